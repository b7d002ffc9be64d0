//! The training loop.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use greenlab_data::{Batch, Batches, Dataset, Split};
use greenlab_engine::{Engine, EngineError, PassStats, Trainer};
use greenlab_meter::{
    Joules, Measurement, MeterError, Provenance, Seconds, Source, Tracker, WindowId,
};
use greenlab_model::InputShape;

use crate::{Control, EpochReport, RunStatus, StepReport, TrainConfig, TrainError, TrainResult};

/// Receives progress from [`train_with`]. Both methods have defaults, so an observer
/// implements only what it needs.
pub trait Observer {
    /// After every optimisation step (cheap: called often).
    fn on_step(&mut self, step: &StepReport) {
        let _ = step;
    }

    /// After every epoch (also a diverged one); [`Control::Stop`] ends the run.
    fn on_epoch(&mut self, epoch: &EpochReport) -> Control {
        let _ = epoch;
        Control::Continue
    }

    /// Asked after every step: `true` interrupts the run at once (e.g. the user pressed
    /// Ctrl-C). The unfinished epoch is reported without evaluation and the run ends with
    /// [`RunStatus::Interrupted`]; the energy spent so far stays in the result.
    fn interrupted(&self) -> bool {
        false
    }
}

/// An epoch callback (and an optional interrupt flag) as an observer.
struct EpochCallback<'a> {
    callback: &'a mut dyn FnMut(&EpochReport) -> Control,
    interrupt: Option<&'a AtomicBool>,
}

impl Observer for EpochCallback<'_> {
    fn on_epoch(&mut self, epoch: &EpochReport) -> Control {
        (self.callback)(epoch)
    }

    fn interrupted(&self) -> bool {
        self.interrupt.is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

/// Trains `config.architecture` on `split` with `engine`, measuring each epoch with `tracker`.
///
/// `callback` sees every finished epoch (including a diverged one) and may stop the run. The
/// result is `Ok` also when the loss diverged ([`TrainResult::diverged`]) or the callback
/// stopped the run; `Err` only when the config is invalid, the network cannot be built, the
/// engine fails, or the meter fails.
pub fn train(
    engine: &dyn Engine,
    split: &Split,
    config: &TrainConfig,
    tracker: &Tracker,
    callback: &mut dyn FnMut(&EpochReport) -> Control,
) -> Result<TrainResult, TrainError> {
    let mut observer = EpochCallback {
        callback,
        interrupt: None,
    };
    train_with(engine, split, config, tracker, &mut observer)
}

/// [`train`] that stops after the current step once `interrupt` is set (from a signal handler
/// or another thread), with [`RunStatus::Interrupted`].
pub fn train_interruptible(
    engine: &dyn Engine,
    split: &Split,
    config: &TrainConfig,
    tracker: &Tracker,
    callback: &mut dyn FnMut(&EpochReport) -> Control,
    interrupt: &AtomicBool,
) -> Result<TrainResult, TrainError> {
    let mut observer = EpochCallback {
        callback,
        interrupt: Some(interrupt),
    };
    train_with(engine, split, config, tracker, &mut observer)
}

/// [`train`] with an [`Observer`] that also sees every step (for progress bars).
pub fn train_with(
    engine: &dyn Engine,
    split: &Split,
    config: &TrainConfig,
    tracker: &Tracker,
    observer: &mut dyn Observer,
) -> Result<TrainResult, TrainError> {
    config.validate()?;
    let train_set = subset(
        &split.train,
        config.limit_train,
        config.fixed_batch_order.unwrap_or(config.seed),
        "training",
    )?;
    let test_set = subset(
        &split.test,
        config.limit_test,
        config.seed.wrapping_add(1),
        "test",
    )?;
    if (train_set.channels, train_set.height, train_set.width)
        != (test_set.channels, test_set.height, test_set.width)
    {
        return Err(TrainError::Data(
            "training and test images differ in shape".into(),
        ));
    }
    let input = InputShape {
        channels: train_set.channels,
        height: train_set.height,
        width: train_set.width,
    };
    let spec = config.architecture.spec(input, train_set.classes)?;
    let mut trainer = engine
        .build(&spec, &config.adam, config.seed)
        .map_err(|source| TrainError::Engine { epoch: 0, source })?;
    // A trainer that keeps the training set on its device (the torch engine on a GPU) gets
    // example positions instead of batches, and its statistics are read every few steps.
    let resident = trainer
        .make_resident(&train_set)
        .map_err(|source| TrainError::Engine { epoch: 0, source })?;
    let mut run = Run {
        trainer: trainer.as_mut(),
        tracker,
        sync: engine.sync_hook(),
        energy_so_far: Some(Joules(0.0)),
    };

    let mut epochs = Vec::with_capacity(config.epochs);
    let mut status = RunStatus::Completed;
    let mut batch = Batch::default();
    for epoch in 1..=config.epochs {
        let shuffle = config.fixed_batch_order.unwrap_or_else(|| {
            config
                .seed
                .wrapping_mul(0x9E37_79B9)
                .wrapping_add(epoch as u64)
        });
        let mut batches = Batches::new(&train_set, config.batch_size, Some(shuffle));
        let pass = if resident {
            run.train_epoch_resident(epoch, &batches, observer)?
        } else {
            run.train_epoch(epoch, &mut batches, &mut batch, observer)?
        };
        let unfinished = pass.diverged_at.is_some() || pass.interrupted_at.is_some();
        let (test_loss, test_accuracy, evaluation) = match unfinished {
            true => (None, None, None),
            false => {
                let (loss, acc, m) = run.evaluate(epoch, &test_set, config.batch_size)?;
                (Some(loss), Some(acc), Some(m))
            }
        };
        let report = EpochReport {
            epoch,
            train_loss: pass.loss_sum / pass.examples.max(1) as f64,
            train_accuracy: pass.correct as f64 / pass.examples.max(1) as f64,
            test_loss,
            test_accuracy,
            steps: pass.steps,
            examples: pass.examples,
            duration: pass.measurement.duration,
            images_per_second: rate(pass.examples, pass.measurement.duration),
            energy: pass.measurement,
            evaluation,
            diverged: pass.diverged_at.is_some(),
        };
        let control = observer.on_epoch(&report);
        epochs.push(report);
        if let Some(step) = pass.diverged_at {
            status = RunStatus::Diverged { epoch, step };
            break;
        }
        if let Some(step) = pass.interrupted_at {
            status = RunStatus::Interrupted { epoch, step };
            break;
        }
        if observer.interrupted() && epoch < config.epochs {
            // Interrupted during the evaluation: the epoch is whole, stop before the next.
            status = RunStatus::Interrupted {
                epoch,
                step: pass.steps,
            };
            break;
        }
        if control == Control::Stop && epoch < config.epochs {
            status = RunStatus::Stopped { epoch };
            break;
        }
    }

    // Unknown stays unknown: one unmeasured window makes the sum unknown.
    let windows = || {
        epochs
            .iter()
            .flat_map(|e| std::iter::once(&e.energy).chain(e.evaluation.as_ref()))
    };
    let training_energy: Option<Joules> = epochs.iter().map(|e| e.energy.total).sum();
    let evaluation_energy: Option<Joules> = epochs
        .iter()
        .filter_map(|e| e.evaluation.as_ref())
        .map(|m| m.total)
        .sum();
    let attributed_energy: Option<Joules> = windows().map(|m| m.attributed).sum();
    let energy_unknown = windows().find_map(|m| m.unknown.clone()).or_else(|| {
        attributed_energy
            .is_none()
            .then(|| "energy could not be attributed to this process".to_owned())
    });
    let energy_provenance = Provenance::combine(windows().map(Measurement::provenance));
    let training_duration: Seconds = epochs.iter().map(|e| e.energy.duration).sum();
    let evaluation_duration: Seconds = epochs
        .iter()
        .filter_map(|e| e.evaluation.as_ref())
        .map(|m| m.duration)
        .sum();
    let energy_source = epochs
        .iter()
        .flat_map(|e| std::iter::once(&e.energy).chain(e.evaluation.as_ref()))
        .map(Measurement::source)
        .min()
        .unwrap_or(Source::Estimated);
    let evaluated: Vec<f64> = epochs.iter().filter_map(|e| e.test_accuracy).collect();
    let best_test_accuracy = evaluated.iter().copied().reduce(f64::max);
    Ok(TrainResult {
        config: config.clone(),
        engine: engine.name().to_string(),
        device: engine.device(),
        network: spec.name.clone(),
        parameters: trainer.parameter_count(),
        forward_flops: spec.forward_flops(),
        train_examples: train_set.len(),
        test_examples: test_set.len(),
        status,
        final_test_accuracy: evaluated.last().copied(),
        best_test_accuracy,
        training_energy,
        evaluation_energy,
        total_energy: training_energy.zip(evaluation_energy).map(|(a, b)| a + b),
        attributed_energy,
        energy_source,
        energy_provenance,
        energy_unknown,
        training_duration,
        total_duration: training_duration + evaluation_duration,
        meter: tracker
            .describe()
            .iter()
            .map(|(d, s)| format!("{d}: {s}"))
            .collect(),
        meter_notes: tracker.notes().to_vec(),
        epochs,
    })
}

/// The whole dataset, or a seeded subset of `limit` examples.
fn subset<'a>(
    data: &'a Dataset,
    limit: Option<usize>,
    seed: u64,
    what: &str,
) -> Result<Cow<'a, Dataset>, TrainError> {
    let data = match limit {
        Some(n) if n < data.len() => Cow::Owned(data.subset(n, seed)),
        _ => Cow::Borrowed(data),
    };
    if data.is_empty() {
        return Err(TrainError::Data(format!("the {what} set is empty")));
    }
    if data.classes < 2 {
        return Err(TrainError::Data(format!(
            "the {what} set has {} class(es); need at least 2",
            data.classes
        )));
    }
    Ok(data)
}

fn rate(examples: usize, duration: Seconds) -> f64 {
    if duration.0 > 0.0 {
        examples as f64 / duration.0
    } else {
        0.0
    }
}

/// Energy windows are re-opened this often inside an epoch so progress shows joules so far.
const STEPS_PER_ENERGY_UPDATE: usize = 8;

struct Run<'a> {
    trainer: &'a mut dyn Trainer,
    tracker: &'a Tracker,
    sync: Option<Box<dyn Fn() + Send + Sync>>,
    /// Energy of every closed window so far (training and evaluation).
    energy_so_far: Option<Joules>,
}

struct Pass {
    loss_sum: f64,
    correct: usize,
    examples: usize,
    steps: usize,
    diverged_at: Option<usize>,
    interrupted_at: Option<usize>,
    measurement: Measurement,
}

impl Run<'_> {
    fn sync(&self) {
        if let Some(sync) = &self.sync {
            sync();
        }
    }

    fn begin(&self, name: &str) -> Result<WindowId, TrainError> {
        self.sync();
        Ok(self.tracker.begin(name)?)
    }

    fn end(&self, id: WindowId) -> Result<Measurement, TrainError> {
        self.sync();
        Ok(self.tracker.end(id)?)
    }

    /// Ends windows after a failure, keeping the first error.
    fn abandon(&self, ids: &[WindowId], error: EngineError, epoch: usize) -> TrainError {
        for &id in ids {
            let _ = self.tracker.end(id);
        }
        TrainError::Engine {
            epoch,
            source: error,
        }
    }

    fn train_epoch(
        &mut self,
        epoch: usize,
        batches: &mut Batches<'_>,
        batch: &mut Batch,
        observer: &mut dyn Observer,
    ) -> Result<Pass, TrainError> {
        // `Batches::count` (not `Iterator::count`, which would consume the pass).
        let steps = Batches::count(batches);
        let window = self.begin(&format!("epoch-{epoch}-train"))?;
        let mut chunk = match self.tracker.begin(&format!("epoch-{epoch}-chunk")) {
            Ok(id) => id,
            Err(e) => return Err(self.meter_failure(&[window], e)),
        };
        let start = Instant::now();
        let mut pass = (0.0f64, 0usize, 0usize, 0usize, None);
        let mut interrupted_at = None;
        let mut chunk_energy = Some(Joules(0.0));
        while batches.next_into(batch) {
            let stats = match self.trainer.train_step(batch) {
                Ok(s) => s,
                Err(e) => return Err(self.abandon(&[chunk, window], e, epoch)),
            };
            pass.3 += 1;
            pass.2 += batch.size;
            pass.1 += stats.correct;
            pass.0 += stats.loss * batch.size as f64;
            if !stats.loss.is_finite() {
                pass.4 = Some(pass.3);
                break;
            }
            if pass.3 % STEPS_PER_ENERGY_UPDATE == 0 {
                self.next_chunk(epoch, window, &mut chunk, &mut chunk_energy)?;
            }
            let elapsed = start.elapsed().as_secs_f64();
            observer.on_step(&StepReport {
                epoch,
                step: pass.3,
                steps,
                loss: pass.0 / pass.2 as f64,
                accuracy: pass.1 as f64 / pass.2 as f64,
                images_per_second: if elapsed > 0.0 {
                    pass.2 as f64 / elapsed
                } else {
                    0.0
                },
                energy_so_far: self.energy_so_far.zip(chunk_energy).map(|(a, b)| a + b),
            });
            if observer.interrupted() {
                interrupted_at = Some(pass.3);
                break;
            }
        }
        // The chunk only fed the progress report; the epoch's figure is the whole window's.
        let _progress_only = self.tracker.end(chunk);
        let measurement = self.end(window)?;
        self.energy_so_far = self
            .energy_so_far
            .zip(measurement.attributed)
            .map(|(a, b)| a + b);
        Ok(Pass {
            loss_sum: pass.0,
            correct: pass.1,
            examples: pass.2,
            steps: pass.3,
            diverged_at: pass.4,
            interrupted_at,
            measurement,
        })
    }

    /// [`Run::train_epoch`] for a trainer that holds the training set: the pass's order is
    /// handed over before the window opens (as the shuffle is outside it), each step names
    /// its examples by position, and the statistics are read back every
    /// `STEPS_PER_ENERGY_UPDATE` steps and at the end — so a divergence is noticed at the
    /// next read, up to that many steps late, and reported at that step.
    fn train_epoch_resident(
        &mut self,
        epoch: usize,
        batches: &Batches<'_>,
        observer: &mut dyn Observer,
    ) -> Result<Pass, TrainError> {
        let order = batches.order();
        let size = batches.batch_size();
        let steps = Batches::count(batches);
        if let Err(e) = self.trainer.set_resident_order(order) {
            return Err(TrainError::Engine { epoch, source: e });
        }
        let window = self.begin(&format!("epoch-{epoch}-train"))?;
        let mut chunk = match self.tracker.begin(&format!("epoch-{epoch}-chunk")) {
            Ok(id) => id,
            Err(e) => return Err(self.meter_failure(&[window], e)),
        };
        let start = Instant::now();
        let mut totals = PassStats::default();
        let (mut done, mut queued) = (0usize, 0usize);
        let (mut diverged_at, mut interrupted_at) = (None, None);
        let mut chunk_energy = Some(Joules(0.0));
        while done < steps {
            let first = done * size;
            let len = size.min(order.len() - first);
            if let Err(e) = self.trainer.train_resident(first, len) {
                return Err(self.abandon(&[chunk, window], e, epoch));
            }
            done += 1;
            queued += len;
            let stop = observer.interrupted();
            if done % STEPS_PER_ENERGY_UPDATE == 0 || done == steps || stop {
                match self.trainer.take_stats() {
                    Ok(s) => totals.add(s),
                    Err(e) => return Err(self.abandon(&[chunk, window], e, epoch)),
                }
                queued = 0;
                if !totals.loss_sum.is_finite() {
                    diverged_at = Some(done);
                    break;
                }
                self.next_chunk(epoch, window, &mut chunk, &mut chunk_energy)?;
            }
            let elapsed = start.elapsed().as_secs_f64();
            let seen = totals.examples.max(1) as f64;
            observer.on_step(&StepReport {
                epoch,
                step: done,
                steps,
                loss: totals.loss_sum / seen,
                accuracy: totals.correct as f64 / seen,
                images_per_second: if elapsed > 0.0 {
                    (totals.examples + queued) as f64 / elapsed
                } else {
                    0.0
                },
                energy_so_far: self.energy_so_far.zip(chunk_energy).map(|(a, b)| a + b),
            });
            if stop {
                interrupted_at = Some(done);
                break;
            }
        }
        let _ = self.tracker.end(chunk);
        let measurement = self.end(window)?;
        self.energy_so_far = self
            .energy_so_far
            .zip(measurement.attributed)
            .map(|(a, b)| a + b);
        Ok(Pass {
            loss_sum: totals.loss_sum,
            correct: totals.correct,
            examples: totals.examples,
            steps: done,
            diverged_at,
            interrupted_at,
            measurement,
        })
    }

    /// Closes the progress chunk of an epoch and opens the next, adding the closed chunk's
    /// attributed energy to `so_far` (unknown stays unknown).
    fn next_chunk(
        &self,
        epoch: usize,
        window: WindowId,
        chunk: &mut WindowId,
        so_far: &mut Option<Joules>,
    ) -> Result<(), TrainError> {
        let closed = self.tracker.end(*chunk);
        let reopened = self.tracker.begin(&format!("epoch-{epoch}-chunk"));
        match (closed, reopened) {
            (Ok(m), Ok(id)) => {
                *so_far = so_far.zip(m.attributed).map(|(a, b)| a + b);
                *chunk = id;
                Ok(())
            }
            (Err(e), reopened) => {
                let mut open = vec![window];
                open.extend(reopened.ok());
                Err(self.meter_failure(&open, e))
            }
            (Ok(_), Err(e)) => Err(self.meter_failure(&[window], e)),
        }
    }

    fn meter_failure(&self, open: &[WindowId], error: MeterError) -> TrainError {
        for &id in open {
            let _ = self.tracker.end(id);
        }
        TrainError::Meter(error)
    }

    /// Mean loss, accuracy and the energy window of one pass over the test set.
    fn evaluate(
        &mut self,
        epoch: usize,
        test: &Dataset,
        batch_size: usize,
    ) -> Result<(f64, f64, Measurement), TrainError> {
        let window = self.begin(&format!("epoch-{epoch}-eval"))?;
        let mut batches = Batches::new(test, batch_size, None);
        let mut batch = Batch::default();
        let (mut loss, mut correct, mut seen) = (0.0, 0usize, 0usize);
        while batches.next_into(&mut batch) {
            match self.trainer.evaluate(&batch) {
                Ok(s) => {
                    loss += s.loss_sum;
                    correct += s.correct;
                    seen += batch.size;
                }
                Err(e) => return Err(self.abandon(&[window], e, epoch)),
            }
        }
        let m = self.end(window)?;
        self.energy_so_far = self.energy_so_far.zip(m.attributed).map(|(a, b)| a + b);
        let n = seen.max(1) as f64;
        Ok((loss / n, correct as f64 / n, m))
    }
}
