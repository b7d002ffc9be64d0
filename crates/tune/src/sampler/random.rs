//! Uniform random search.

use crate::TuneError;
use crate::sampler::rng::TrialRng;
use crate::sampler::{SampleContext, Sampler};
use crate::space::Params;

/// Samples every parameter uniformly (log-uniformly on log scales), independently of the history.
///
/// Trial `n` gets the point drawn from `TrialRng::new(seed, n, 0)`: the same seed gives the
/// same suggestions whatever the number of workers.
#[derive(Clone, Debug)]
pub struct RandomSampler {
    seed: u64,
}

impl RandomSampler {
    /// A random sampler with this seed.
    pub fn new(seed: u64) -> RandomSampler {
        RandomSampler { seed }
    }
}

impl Sampler for RandomSampler {
    fn name(&self) -> &str {
        "random"
    }

    fn suggest(&self, ctx: &SampleContext<'_>) -> Result<Params, TuneError> {
        let mut rng = TrialRng::new(self.seed, ctx.number, 0);
        let point: Vec<f64> = (0..ctx.space.dims()).map(|_| rng.next_f64()).collect();
        ctx.space.from_unit(&point)
    }
}
