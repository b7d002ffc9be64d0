//! Builds the training objective of `greenlab_experiment::objective` with an engine chosen by
//! name (only the cli names engines).

use std::sync::Arc;

use anyhow::Context;
use greenlab_engine::Engine;
use greenlab_experiment::objective::{TrainObjective, TrainSettings};
use greenlab_meter::Tracker;
use greenlab_train::TrainConfig;

use crate::meters::MeterArgs;

/// Loads the dataset, builds the engine and the energy tracker (the one builder, for the
/// training device) for `base`.
pub fn load(
    base: TrainConfig,
    engine: &str,
    device: &str,
    threads: Option<usize>,
    meter: &MeterArgs,
) -> anyhow::Result<TrainObjective> {
    let split = greenlab_data::load(base.dataset, &base.data_dir)
        .with_context(|| format!("loading {} from {}", base.dataset, base.data_dir.display()))?;
    let engine: Arc<dyn Engine> = Arc::from(crate::engines::make_engine(engine, device, threads)?);
    let mut tracker = crate::meters::tracker(meter, Some(device))?;
    if let Some(sync) = engine.sync_hook() {
        tracker.set_sync(sync);
    }
    Ok(TrainObjective {
        engine,
        split: Arc::new(split),
        base,
        tracker: Arc::new(tracker),
    })
}

/// Builds the objective of a tuning study with `kind = "train"` from its `[objective]
/// options`, measuring with `tracker`.
pub fn from_options(
    options: &serde_json::Map<String, serde_json::Value>,
    tracker: Arc<Tracker>,
) -> anyhow::Result<TrainObjective> {
    let settings: TrainSettings =
        serde_json::from_value(serde_json::Value::Object(options.clone()))
            .context("invalid [objective] options for kind = \"train\"")?;
    let base = settings.to_config()?;
    let split = greenlab_data::load(base.dataset, &base.data_dir)
        .with_context(|| format!("loading {} from {}", base.dataset, base.data_dir.display()))?;
    let engine: Arc<dyn Engine> = Arc::from(crate::engines::make_engine(
        &settings.engine,
        &settings.device,
        None,
    )?);
    Ok(TrainObjective {
        engine,
        split: Arc::new(split),
        base,
        tracker,
    })
}
