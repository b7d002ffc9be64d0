//! Mini-batches in a seeded random order.

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::Dataset;

/// One mini-batch, copied into contiguous buffers ready for an engine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Examples in the batch.
    pub size: usize,
    /// Pixels, `size × C × H × W`.
    pub images: Vec<f32>,
    /// Labels, one per example.
    pub labels: Vec<u8>,
}

/// Iterates over a dataset in mini-batches; the order is shuffled with a seed (or kept).
///
/// The last batch may be smaller. Buffers are reused between batches when the caller hands
/// them back with [`Batches::next_into`], so an epoch allocates once.
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
}

impl<'a> Batches<'a> {
    /// Batches over `data` in an order shuffled by `seed`, or in file order if `seed` is `None`.
    pub fn new(data: &'a Dataset, batch_size: usize, seed: Option<u64>) -> Batches<'a> {
        let mut order: Vec<usize> = (0..data.len()).collect();
        if let Some(seed) = seed {
            order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        }
        Batches {
            data,
            order,
            batch_size: batch_size.max(1),
            pos: 0,
        }
    }

    /// Number of batches in a full pass.
    pub fn count(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// The examples' indices in the order of the pass (batches are consecutive runs of it).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Examples per batch (the last batch may have fewer).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Fills `batch` with the next mini-batch; `false` at the end of the pass.
    pub fn next_into(&mut self, batch: &mut Batch) -> bool {
        if self.pos >= self.order.len() {
            return false;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let el = self.data.example_len();
        batch.images.clear();
        batch.labels.clear();
        for &i in &self.order[self.pos..end] {
            batch
                .images
                .extend_from_slice(&self.data.images[i * el..(i + 1) * el]);
            batch.labels.push(self.data.labels[i]);
        }
        batch.size = end - self.pos;
        self.pos = end;
        true
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        let mut b = Batch::default();
        self.next_into(&mut b).then_some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(n: usize) -> Dataset {
        Dataset {
            channels: 1,
            height: 1,
            width: 1,
            classes: 10,
            images: (0..n).map(|i| i as f32).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn the_order_is_the_batches_concatenated() {
        let d = tiny(23);
        let batches = Batches::new(&d, 5, Some(3));
        let order: Vec<f32> = batches.order().iter().map(|&i| i as f32).collect();
        assert_eq!(batches.batch_size(), 5);
        let images: Vec<f32> = Batches::new(&d, 5, Some(3))
            .flat_map(|b| b.images)
            .collect();
        assert_eq!(order, images);
    }

    #[test]
    fn every_example_once_per_pass_in_seeded_order() {
        let d = tiny(23);
        let batches: Vec<Batch> = Batches::new(&d, 5, Some(1)).collect();
        assert_eq!(batches.len(), 5);
        assert_eq!(batches.last().unwrap().size, 3);
        let mut seen: Vec<f32> = batches.iter().flat_map(|b| b.images.clone()).collect();
        let first_pass = seen.clone();
        seen.sort_by(f32::total_cmp);
        assert_eq!(seen, (0..23).map(|i| i as f32).collect::<Vec<_>>());
        let again: Vec<f32> = Batches::new(&d, 5, Some(1))
            .flat_map(|b| b.images)
            .collect();
        assert_eq!(first_pass, again);
        let other: Vec<f32> = Batches::new(&d, 5, Some(2))
            .flat_map(|b| b.images)
            .collect();
        assert_ne!(first_pass, other);
        for b in &batches {
            for (x, l) in b.images.iter().zip(&b.labels) {
                assert_eq!((*x as usize % 10) as u8, *l);
            }
        }
    }
}
