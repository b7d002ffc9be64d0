//! Hand-written kernels for the layers where Burn's generic composition costs the most on the
//! flex CPU backend: convolution with stride 1 (`conv`), batch normalisation in training mode,
//! alone or fused with the ReLU and 2×2 max pooling after it (`norm`), 2×2 max pooling
//! (`pool`) and fully connected layers (`linear`).
//!
//! Each is an autodiff operation of its own on `Autodiff<Flex>`: the forward pass runs over
//! contiguous memory and keeps only what its backward pass needs (the input and weights; the
//! input and a few numbers per channel; the window position of each maximum as one byte), and
//! the backward pass is one or two more loops. Burn builds the same layers from generic tensor
//! operations, each a full pass over the activation with its own allocation, keeps every
//! intermediate alive for its own backward pass, and computes a convolution's weight gradient
//! as a convolution whose kernel is the whole output gradient (which flex unfolds into a buffer
//! many times the activation's size). Before these kernels, one SimpleCNN(4,7) step took
//! 158 ms in `greenlab profile` (2 threads); with the first three, 62 ms.
//!
//! Loops are compiled for several instruction sets and picked at run time (`simd`); matrix
//! products go through `gemm` at the same level (`gemm`).
//!
//! They compute what Burn's `Conv2d`, `BatchNorm` (training), `Relu`, `MaxPool2d` and `Linear`
//! compute, including ties and NaN in pooling windows and flooring of odd sizes; the tests
//! compare outputs and gradients with Burn's modules. Only the order of floating-point
//! additions differs. A tensor that is not an f32 tensor on the flex backend is handed back
//! unchanged so the caller can use Burn's module.

mod conv;
pub(crate) mod gemm;
mod linear;
mod norm;
mod pool;
pub(crate) mod simd;

pub(crate) use conv::conv2d;
pub(crate) use linear::linear;
pub(crate) use norm::{NormOutput, batch_norm, norm_pool};
pub(crate) use pool::max_pool_2x2;

use burn::backend::autodiff::ops::NodeGuard;
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, TensorData};

type Ad = Autodiff<Flex>;

/// Values per parallel task below which splitting further costs more than it saves.
const MIN_PLANE_ELEMS: usize = 4096;

/// The tensor's values as one contiguous `f32` slice (copying only if it is strided).
fn contiguous(t: FlexTensor) -> Option<FlexTensor> {
    if t.dtype() != DType::F32 {
        return None;
    }
    if t.as_slice::<f32>().is_some() {
        Some(t)
    } else {
        let t = t.to_contiguous();
        t.as_slice::<f32>().is_some().then_some(t)
    }
}

/// A tensor on autodiff flex taken apart: its node in the graph and its values as a contiguous
/// f32 tensor. `None` if it is not an f32 tensor on autodiff flex.
fn tracked<const D: usize>(t: Tensor<D>) -> Option<(NodeGuard, FlexTensor)> {
    let (primitive, node) = t.try_into_primitive::<Ad>().ok()?.into_parts();
    Some((node, contiguous(primitive)?))
}

fn values(t: &FlexTensor) -> &[f32] {
    // Only called on tensors that went through `contiguous`.
    t.as_slice::<f32>().unwrap_or(&[])
}

fn flex(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// How many planes one parallel task takes so it touches at least `MIN_PLANE_ELEMS` values.
fn planes_per_task(plane: usize) -> usize {
    MIN_PLANE_ELEMS.div_ceil(plane.max(1)).max(1)
}

#[cfg(test)]
pub(crate) mod tests {
    pub(crate) use super::norm::tests::NormCase;
    use super::*;

    pub(crate) fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    /// Equal lengths, not empty, and every pair within 1e-4 relative (plus 1e-4 absolute).
    pub(crate) fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        assert!(!a.is_empty(), "{what}: empty");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    pub(crate) fn grad_of<const D: usize>(x: &Tensor<D>, g: &burn::tensor::Gradients) -> Vec<f32> {
        vec_of(Tensor::<D>::from_inner(
            x.grad(g).unwrap_or_else(|| panic!("no gradient")),
        ))
    }
}
