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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{GridSampler, HaltonSampler, SobolSampler};
    use crate::testing::check_sampler;

    #[test]
    fn built_in_samplers_pass_the_conformance_suite() {
        check_sampler(&|seed| Box::new(RandomSampler::new(seed)), 20);
        check_sampler(&|seed| Box::new(GridSampler::new(seed, 4)), 20);
        check_sampler(&|seed| Box::new(HaltonSampler::new(seed)), 20);
        check_sampler(&|seed| Box::new(SobolSampler::new(seed)), 20);
    }

    #[test]
    fn random_points_spread_over_the_space() {
        let space = crate::testing::sampler_space();
        let s = RandomSampler::new(1);
        let mut low_lr = 0;
        for number in 0..400 {
            let ctx = SampleContext {
                space: &space,
                objectives: &[],
                history: &[],
                number,
            };
            let p = s.suggest(&ctx).unwrap();
            if p["lr"].as_f64().unwrap() < 1e-3 {
                low_lr += 1;
            }
        }
        // Log-uniform on [1e-5, 1e-1]: half the mass lies below 1e-3.
        assert!((150..250).contains(&low_lr), "{low_lr} of 400 below 1e-3");
    }
}
