//! Adam over all parameters at once: the parameters live in one flat buffer, and an update is
//! a dozen whole-buffer operations instead of a dozen per parameter tensor.
//!
//! This is what PyTorch's multi-tensor (`foreach`) and fused Adam achieve on a GPU — a few
//! kernel launches per step whatever the number of parameters — through operations tch 0.24
//! binds (it has no binding for `_fused_adam_` or the `_foreach_` family). Each parameter
//! stays its own autograd leaf: `set_data` makes it a view of its slice of the buffer, so the
//! layers use it unchanged and the in-place update of the buffer is the update of every
//! parameter. Gradients come from `torch::autograd::grad` (`Tensor::run_backward`) and are
//! concatenated once per step; nothing accumulates in `.grad`, so there is nothing to zero.
//!
//! The arithmetic is `torch.optim.Adam`'s (weight decay as an L2 term added to the gradient,
//! bias corrections, ε outside the square root); only the rounding of the fused expressions
//! can differ from libtorch's per-tensor Adam.

use greenlab_engine::AdamConfig;
use tch::{TchError, Tensor};

/// Adam's state over one flat buffer of parameters.
pub(crate) struct FlatAdam {
    /// The parameters (views of `flat`), in the order the gradients come back.
    params: Vec<Tensor>,
    flat: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    config: AdamConfig,
    step: i32,
}

impl FlatAdam {
    /// Moves `params` into one buffer on their device (they must share device and kind).
    pub(crate) fn new(params: Vec<Tensor>, config: AdamConfig) -> Result<FlatAdam, TchError> {
        let flat = tch::no_grad(|| -> Result<Tensor, TchError> {
            let pieces = params
                .iter()
                .map(|p| p.f_detach()?.f_reshape([-1]))
                .collect::<Result<Vec<_>, _>>()?;
            Tensor::f_cat(&pieces, 0)
        })?;
        let mut offset = 0i64;
        let mut params = params;
        for p in &mut params {
            let n = p.numel() as i64;
            let view = flat.f_narrow(0, offset, n)?.f_view(p.size().as_slice())?;
            p.f_set_data(&view)?;
            offset += n;
        }
        let exp_avg = flat.f_zeros_like()?;
        let exp_avg_sq = flat.f_zeros_like()?;
        Ok(FlatAdam {
            params,
            flat,
            exp_avg,
            exp_avg_sq,
            config,
            step: 0,
        })
    }

    /// Backpropagates `loss` to the parameters and applies one Adam update.
    pub(crate) fn backward_step(&mut self, loss: &Tensor) -> Result<(), TchError> {
        let grads = self.gradients(loss)?;
        self.update(&grads)
    }

    /// The parameters' gradients of `loss` (in their order), without touching `.grad`.
    pub(crate) fn gradients(&self, loss: &Tensor) -> Result<Vec<Tensor>, TchError> {
        Tensor::f_run_backward(&[loss], &self.params, false, false)
    }

    /// One Adam update from `grads` (one per parameter, in order).
    pub(crate) fn update(&mut self, grads: &[Tensor]) -> Result<(), TchError> {
        tch::no_grad(|| self.update_flat(grads))
    }

    fn update_flat(&mut self, grads: &[Tensor]) -> Result<(), TchError> {
        let c = self.config;
        let pieces = grads
            .iter()
            .zip(&self.params)
            .map(|(g, p)| {
                // A parameter the loss does not reach gets no gradient; Adam then sees zero.
                if g.defined() {
                    g.f_reshape([-1])
                } else {
                    p.f_zeros_like()?.f_reshape([-1])
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut grad = Tensor::f_cat(&pieces, 0)?;
        if c.weight_decay != 0.0 {
            grad = grad.f_add(&self.flat.f_mul_scalar(c.weight_decay)?)?;
        }
        self.step += 1;
        let bias1 = 1.0 - c.beta1.powi(self.step);
        let bias2 = 1.0 - c.beta2.powi(self.step);
        // m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
        let _ = self.exp_avg.f_lerp_(&grad, 1.0 - c.beta1)?;
        let squared = grad.f_mul(&grad)?;
        let _ = self.exp_avg_sq.f_lerp_(&squared, 1.0 - c.beta2)?;
        // p ← p − lr/bias1 · m / (√v / √bias2 + ε)
        let mut denom = self.exp_avg_sq.f_sqrt()?;
        let _ = denom.f_div_scalar_(bias2.sqrt())?;
        let _ = denom.f_add_scalar_(c.eps)?;
        let mut delta = self.exp_avg.f_div(&denom)?;
        let _ = delta.f_mul_scalar_(c.lr / bias1)?;
        let _ = self.flat.f_sub_(&delta)?;
        Ok(())
    }
}
