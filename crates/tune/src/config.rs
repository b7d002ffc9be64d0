//! Study configuration: the TOML a user writes, parsed and validated once, and the factories
//! that turn its sampler and pruner sections into trait objects.
//!
//! ```toml
//! name = "lenet-adam"
//!
//! [space]
//! lr = { type = "float", low = 1e-5, high = 1e-1, log = true }
//! beta1 = { type = "float", low = 0.1, high = 0.999 }
//! conv = { type = "int", low = 1, high = 4 }
//! relu = { type = "categorical", choices = [true, false] }
//!
//! [[objectives]]            # default: accuracy, maximised
//! metric = "accuracy"
//! direction = "maximize"
//!
//! [sampler]                 # grid | random | halton | sobol | gp | tpe | parego | nsga2
//! name = "gp"
//! seed = 7
//! options = { acquisition = "pi" }
//!
//! [pruner]                  # none | median | asha | pareto
//! name = "median"
//! options = { n_startup_trials = 5 }
//!
//! [stop]                    # at least one rule
//! n_trials = 50
//! timeout = "2h"
//! energy_budget = "50kJ"
//! target = 0.99
//! max_retries = 2           # runs of a lost trial's parameters again (worker killed)
//!
//! [objective]               # command (external process) or train (built in)
//! kind = "command"
//! command = ["python", "train.py", "--lr", "{lr}"]
//! timeout = "10m"           # a trial still running then fails (its process group is killed)
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use greenlab_meter::Joules;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::TuneError;
use crate::pruner::{MedianPruner, NopPruner, ParetoPruner, Pruner, SuccessiveHalvingPruner};
use crate::sampler::{GridSampler, HaltonSampler, RandomSampler, Sampler, SobolSampler};
use crate::space::{Distribution, SearchSpace};
use crate::trial::{Direction, Objective};

/// Names accepted in `[sampler] name`.
pub const SAMPLERS: &[&str] = &[
    "grid",
    "random",
    "halton",
    "sobol",
    "quasi",
    "gp",
    "tpe",
    "parego",
    "nsga2",
    "paper-grid",
    "paper-gp",
];

/// Names accepted in `[pruner] name`.
pub const PRUNERS: &[&str] = &["none", "median", "asha", "pareto"];

/// A whole study definition, as written in TOML (and stored as JSON in the storage).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// Unique study name within its storage.
    pub name: String,
    /// Parameters and their distributions.
    pub space: BTreeMap<String, Distribution>,
    /// One objective (accuracy) or two (accuracy and energy); `Trial::values` follow this order.
    #[serde(default = "default_objectives")]
    pub objectives: Vec<Objective>,
    /// How parameters are chosen.
    #[serde(default)]
    pub sampler: SamplerSpec,
    /// How bad trials are stopped early.
    #[serde(default)]
    pub pruner: PrunerSpec,
    /// When the study ends.
    #[serde(default)]
    pub stop: StopRules,
    /// What is being optimised.
    #[serde(default)]
    pub objective: ObjectiveSpec,
}

fn default_objectives() -> Vec<Objective> {
    vec![Objective {
        metric: "accuracy".into(),
        direction: Direction::Maximize,
    }]
}

/// `[sampler]`: a name, a seed and sampler-specific options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerSpec {
    /// One of [`SAMPLERS`].
    pub name: String,
    /// Seed: the same seed gives the same suggestions.
    #[serde(default)]
    pub seed: u64,
    /// Sampler-specific settings (for `grid`: `levels`, `max_int_levels`; for `gp`, `tpe`,
    /// `parego`, `nsga2`: the fields of their options structs, e.g.
    /// `options = { population_size = 30 }` for `nsga2`).
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl Default for SamplerSpec {
    fn default() -> Self {
        SamplerSpec {
            name: "random".into(),
            seed: 0,
            options: serde_json::Map::new(),
        }
    }
}

/// `[pruner]`: a name and pruner-specific options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrunerSpec {
    /// One of [`PRUNERS`].
    pub name: String,
    /// Pruner-specific settings: `n_startup_trials`, `n_warmup_steps` (median, pareto),
    /// `quantile` (pareto), `min_resource`, `reduction_factor`, `min_early_stopping_rate` (asha).
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl Default for PrunerSpec {
    fn default() -> Self {
        PrunerSpec {
            name: "none".into(),
            options: serde_json::Map::new(),
        }
    }
}

/// `[stop]`: the study ends as soon as any rule holds (checked between trials).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRules {
    /// Number of trials to run. Finished trials count (complete, pruned, diverged, and failed
    /// because the objective failed: non-zero exit, crash), while a trial interrupted or lost
    /// with its worker does not, because it runs again (see `max_retries`).
    #[serde(default)]
    pub n_trials: Option<u64>,
    /// How many times the parameters of a trial whose worker was lost (killed, lease expired)
    /// are run again (default [`DEFAULT_MAX_RETRIES`]); after that the trial counts as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Wall time of this run, as seconds or text like `"90s"`, `"30min"`, `"2h"`.
    #[serde(default, with = "duration_text")]
    pub timeout: Option<Duration>,
    /// Energy of all the study's trials together, as joules or text like `"50kJ"`, `"2.5 MJ"`.
    #[serde(default, with = "energy_text")]
    pub energy_budget: Option<Joules>,
    /// Stop once a complete trial reaches this value of the first objective.
    #[serde(default)]
    pub target: Option<f64>,
}

/// Retries of a lost trial when `[stop] max_retries` is not set.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

impl StopRules {
    /// The retry limit for lost trials.
    pub fn max_retries(&self) -> u32 {
        self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES)
    }

    /// Whether no rule is set (the study would never end by itself).
    pub fn is_empty(&self) -> bool {
        self.n_trials.is_none()
            && self.timeout.is_none()
            && self.energy_budget.is_none()
            && self.target.is_none()
    }
}

/// What kind of objective a study optimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectiveKind {
    /// An external command, parameters substituted, metrics from its last JSON stdout line.
    #[default]
    Command,
    /// The built-in training of `greenlab train` (wired by the command-line tool).
    Train,
}

/// `[objective]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveSpec {
    /// Command or built-in training.
    #[serde(default)]
    pub kind: ObjectiveKind,
    /// For `command`: program and arguments, `{name}` replaced by each parameter's value.
    #[serde(default)]
    pub command: Vec<String>,
    /// Free settings for the objective (for `train`: network, dataset, epochs, ...).
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
    /// Time limit of one trial, as seconds or text like `"10m"`: a trial still running then
    /// is stopped (a command's whole process group is killed) and recorded as failed with the
    /// energy it spent.
    #[serde(
        default,
        with = "duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

impl StudyConfig {
    /// Parses and validates a TOML study definition.
    pub fn from_toml(text: &str) -> Result<StudyConfig, TuneError> {
        let config: StudyConfig = toml::from_str(text)
            .map_err(|e| TuneError::InvalidConfig(format!("malformed study TOML: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses the JSON form kept in the storage (see [`StudyConfig::to_json`]).
    pub fn from_json(text: &str) -> Result<StudyConfig, TuneError> {
        let config: StudyConfig = serde_json::from_str(text).map_err(|e| {
            TuneError::InvalidConfig(format!("stored study definition is unreadable: {e}"))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The JSON kept in the storage as the study's definition.
    pub fn to_json(&self) -> String {
        // Serialising plain data (maps with string keys, numbers, strings) cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The search space.
    pub fn search_space(&self) -> SearchSpace {
        SearchSpace {
            params: self.space.clone(),
        }
    }

    /// What in this study needs trial energy (an energy objective, an energy budget, cost-aware
    /// acquisition, the energy pruner), one clause each; empty when nothing does. A study
    /// that needs energy must not start without a working energy source.
    pub fn energy_uses(&self) -> Vec<String> {
        let mut uses = Vec::new();
        if self.objectives.iter().any(|o| o.metric == "energy") {
            uses.push("the objective \"energy\"".to_owned());
        }
        if let Some(b) = self.stop.energy_budget {
            uses.push(format!("the energy budget of {b:.1}"));
        }
        if self.sampler.options.contains_key("cost_aware") {
            uses.push("cost-aware acquisition (improvement per joule)".to_owned());
        }
        if self.pruner.name == "pareto" {
            uses.push("the pareto (accuracy, energy) pruner".to_owned());
        }
        uses
    }

    /// Checks everything that can be checked without running: a name, a valid space, one or
    /// two distinct objectives, a known sampler and pruner with valid options, a stopping rule,
    /// a command for command objectives.
    pub fn validate(&self) -> Result<(), TuneError> {
        if self.name.trim().is_empty() {
            return Err(TuneError::InvalidConfig(
                "the study needs a non-empty `name`".into(),
            ));
        }
        self.search_space().validate()?;
        if self.objectives.is_empty() || self.objectives.len() > 2 {
            return Err(TuneError::InvalidConfig(format!(
                "a study has one or two objectives, not {}",
                self.objectives.len()
            )));
        }
        if self.objectives.len() == 2 && self.objectives[0].metric == self.objectives[1].metric {
            return Err(TuneError::InvalidConfig(format!(
                "objective {:?} is listed twice",
                self.objectives[0].metric
            )));
        }
        if self.objectives[0].metric == "energy" {
            return Err(TuneError::InvalidConfig(
                "the first objective is the metric reported per epoch (accuracy, loss); put \
                 `energy` second"
                    .into(),
            ));
        }
        build_sampler(&self.sampler)?;
        build_pruner(&self.pruner)?;
        let grid_ends = matches!(self.sampler.name.as_str(), "grid" | "paper-grid");
        if self.stop.is_empty() && !grid_ends {
            return Err(TuneError::InvalidConfig(
                "the study has no stopping rule; set [stop] n_trials, timeout, energy_budget or \
                 target"
                    .into(),
            ));
        }
        if self.objective.kind == ObjectiveKind::Command && self.objective.command.is_empty() {
            // The command may also come from the command line; the caller checks again then.
            return Ok(());
        }
        Ok(())
    }
}

fn unknown_option(kind: &str, name: &str, key: &str, known: &[String]) -> TuneError {
    if known.is_empty() {
        return TuneError::InvalidConfig(format!(
            "{kind} {name:?} takes no options, but {key:?} was given; remove it"
        ));
    }
    TuneError::InvalidConfig(format!(
        "{kind} {name:?} has no option {key:?}; known options: {}",
        known.join(", ")
    ))
}

/// Reads options into `T` (whose `Default` gives the defaults), rejecting unknown keys.
pub fn options_into<T: DeserializeOwned + Serialize + Default>(
    kind: &str,
    name: &str,
    options: &serde_json::Map<String, serde_json::Value>,
) -> Result<T, TuneError> {
    let defaults = serde_json::to_value(T::default()).unwrap_or_default();
    if let Some(fields) = defaults.as_object() {
        let known: Vec<String> = fields.keys().cloned().collect();
        if let Some(key) = options.keys().find(|k| !fields.contains_key(*k)) {
            return Err(unknown_option(kind, name, key, &known));
        }
    }
    let mut merged = defaults;
    if let Some(m) = merged.as_object_mut() {
        for (k, v) in options {
            m.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(merged)
        .map_err(|e| TuneError::InvalidConfig(format!("{kind} {name:?}: bad option: {e}")))
}

/// Options of the grid sampler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GridOptions {
    /// Levels per real parameter (the paper used a handful per parameter).
    pub levels: u64,
    /// Integer ranges up to this many values are gridded value by value.
    pub max_int_levels: u64,
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            levels: 5,
            max_int_levels: crate::sampler::grid::DEFAULT_MAX_INT_LEVELS,
        }
    }
}

/// Options of samplers that take none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NoOptions {}

/// Builds the sampler a `[sampler]` section names. Adding a sampler is one match arm here
/// and one entry in [`SAMPLERS`]. Every sampler also takes `repeat = k`: each configuration it
/// suggests then runs as `k` consecutive trials ([`RepeatSampler`](crate::sampler::repeat)).
pub fn build_sampler(spec: &SamplerSpec) -> Result<Box<dyn Sampler>, TuneError> {
    if let Some(times) = spec.options.get("repeat") {
        let times = times.as_u64().filter(|&k| k >= 1).ok_or_else(|| {
            TuneError::InvalidConfig(format!(
                "sampler {:?}: repeat must be a whole number of at least 1, got {times}",
                spec.name
            ))
        })?;
        let mut inner = spec.clone();
        inner.options.remove("repeat");
        let inner = build_sampler(&inner)?;
        return Ok(if times == 1 {
            inner
        } else {
            Box::new(crate::sampler::repeat::RepeatSampler::new(inner, times))
        });
    }
    let name = spec.name.as_str();
    let opts = &spec.options;
    Ok(match name {
        "grid" => {
            let o: GridOptions = options_into("sampler", name, opts)?;
            if o.levels == 0 {
                return Err(TuneError::InvalidConfig(
                    "sampler \"grid\": levels must be at least 1".into(),
                ));
            }
            Box::new(GridSampler::new(spec.seed, o.levels).with_max_int_levels(o.max_int_levels))
        }
        "random" => {
            options_into::<NoOptions>("sampler", name, opts)?;
            Box::new(RandomSampler::new(spec.seed))
        }
        "halton" => {
            options_into::<NoOptions>("sampler", name, opts)?;
            Box::new(HaltonSampler::new(spec.seed))
        }
        "sobol" | "quasi" => {
            options_into::<NoOptions>("sampler", name, opts)?;
            Box::new(SobolSampler::new(spec.seed))
        }
        "gp" => Box::new(crate::sampler::gp::GpSampler::new(
            spec.seed,
            options_into("sampler", name, opts)?,
        )),
        "tpe" => Box::new(crate::sampler::tpe::TpeSampler::new(
            spec.seed,
            options_into("sampler", name, opts)?,
        )),
        "parego" => Box::new(crate::sampler::multi::ParegoSampler::new(
            spec.seed,
            options_into("sampler", name, opts)?,
        )),
        "nsga2" => {
            let o: crate::sampler::nsga2::Nsga2Options = options_into("sampler", name, opts)?;
            o.validate()?;
            Box::new(crate::sampler::nsga2::Nsga2Sampler::new(spec.seed, o))
        }
        "paper-grid" => Box::new(crate::sampler::paper::PaperGridSampler::new(
            spec.seed,
            options_into("sampler", name, opts)?,
        )),
        "paper-gp" => Box::new(crate::sampler::paper::PaperGpSampler::new(
            spec.seed,
            options_into("sampler", name, opts)?,
        )),
        other => {
            return Err(TuneError::InvalidConfig(format!(
                "unknown sampler {other:?}; known samplers: {}",
                SAMPLERS.join(", ")
            )));
        }
    })
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct MedianOptions {
    n_startup_trials: usize,
    n_warmup_steps: u32,
}

impl Default for MedianOptions {
    fn default() -> Self {
        let d = MedianPruner::default();
        MedianOptions {
            n_startup_trials: d.n_startup_trials,
            n_warmup_steps: d.n_warmup_steps,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct AshaOptions {
    min_resource: u32,
    reduction_factor: u32,
    min_early_stopping_rate: u32,
}

impl Default for AshaOptions {
    fn default() -> Self {
        let d = SuccessiveHalvingPruner::default();
        AshaOptions {
            min_resource: d.min_resource,
            reduction_factor: d.reduction_factor,
            min_early_stopping_rate: d.min_early_stopping_rate,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct ParetoOptions {
    n_startup_trials: usize,
    n_warmup_steps: u32,
    quantile: f64,
}

impl Default for ParetoOptions {
    fn default() -> Self {
        let d = ParetoPruner::default();
        ParetoOptions {
            n_startup_trials: d.n_startup_trials,
            n_warmup_steps: d.n_warmup_steps,
            quantile: d.quantile,
        }
    }
}

/// Builds the pruner a `[pruner]` section names.
pub fn build_pruner(spec: &PrunerSpec) -> Result<Box<dyn Pruner>, TuneError> {
    let name = spec.name.as_str();
    let opts = &spec.options;
    Ok(match name {
        "none" | "nop" => {
            options_into::<NoOptions>("pruner", name, opts)?;
            Box::new(NopPruner)
        }
        "median" => {
            let o: MedianOptions = options_into("pruner", name, opts)?;
            Box::new(MedianPruner::new(o.n_startup_trials, o.n_warmup_steps))
        }
        "asha" | "successive_halving" => {
            let o: AshaOptions = options_into("pruner", name, opts)?;
            if o.reduction_factor < 2 || o.min_resource < 1 {
                return Err(TuneError::InvalidConfig(
                    "pruner \"asha\": reduction_factor must be ≥ 2 and min_resource ≥ 1".into(),
                ));
            }
            let mut p = SuccessiveHalvingPruner::new(o.min_resource, o.reduction_factor);
            p.min_early_stopping_rate = o.min_early_stopping_rate;
            Box::new(p)
        }
        "pareto" => {
            let o: ParetoOptions = options_into("pruner", name, opts)?;
            if !(0.0..=1.0).contains(&o.quantile) {
                return Err(TuneError::InvalidConfig(format!(
                    "pruner \"pareto\": quantile must lie in [0, 1], got {}",
                    o.quantile
                )));
            }
            Box::new(ParetoPruner::new(
                o.n_startup_trials,
                o.n_warmup_steps,
                o.quantile,
            ))
        }
        other => {
            return Err(TuneError::InvalidConfig(format!(
                "unknown pruner {other:?}; known pruners: {}",
                PRUNERS.join(", ")
            )));
        }
    })
}

/// Parses an energy: a number of joules, or a number with a unit `J`, `kJ`, `MJ`, `GJ`, `Wh`,
/// `kWh` (space optional, case-sensitive prefixes as written here; `j`/`kj` also accepted).
pub fn parse_energy(text: &str) -> Result<Joules, TuneError> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = (t[..split].trim(), t[split..].trim());
    let value: f64 = number.parse().map_err(|_| {
        TuneError::InvalidConfig(format!(
            "cannot read energy {text:?}; write a number with a unit, like \"50kJ\", \"2.5 MJ\" \
             or \"300 J\""
        ))
    })?;
    let scale = match unit {
        "" | "J" | "j" => 1.0,
        "kJ" | "kj" | "KJ" => 1e3,
        "MJ" => 1e6,
        "GJ" => 1e9,
        "Wh" | "wh" => 3600.0,
        "kWh" | "kwh" => 3.6e6,
        _ => {
            return Err(TuneError::InvalidConfig(format!(
                "unknown energy unit {unit:?} in {text:?}; use J, kJ, MJ, GJ, Wh or kWh"
            )));
        }
    };
    let joules = value * scale;
    if !joules.is_finite() || joules <= 0.0 {
        return Err(TuneError::InvalidConfig(format!(
            "energy {text:?} must be a positive amount"
        )));
    }
    Ok(Joules(joules))
}

/// Parses a duration: seconds, or a number with `s`, `min`/`m`, `h`, `d`.
pub fn parse_duration(text: &str) -> Result<Duration, TuneError> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = (t[..split].trim(), t[split..].trim());
    let value: f64 = number.parse().map_err(|_| {
        TuneError::InvalidConfig(format!(
            "cannot read duration {text:?}; write seconds or a number with s, min, h or d"
        ))
    })?;
    let scale = match unit {
        "" | "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => {
            return Err(TuneError::InvalidConfig(format!(
                "unknown duration unit {unit:?} in {text:?}; use s, min, h or d"
            )));
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(TuneError::InvalidConfig(format!(
            "duration {text:?} must be positive"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(f64),
    Text(String),
}

mod energy_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(v: &Option<Joules>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(j) => s.serialize_some(&j.0),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Joules>, D::Error> {
        match Option::<NumberOrText>::deserialize(d)? {
            None => Ok(None),
            Some(NumberOrText::Number(x)) => parse_energy(&x.to_string())
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(NumberOrText::Text(t)) => {
                parse_energy(&t).map(Some).map_err(serde::de::Error::custom)
            }
        }
    }
}

mod duration_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<NumberOrText>::deserialize(d)? {
            None => Ok(None),
            Some(NumberOrText::Number(x)) => parse_duration(&x.to_string())
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(NumberOrText::Text(t)) => parse_duration(&t)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAPER: &str = r#"
name = "paper"

[space]
lr = { type = "float", low = 1e-5, high = 1e-1, log = true }
beta1 = { type = "float", low = 0.1, high = 0.999 }
conv = { type = "int", low = 1, high = 4 }
relu = { type = "categorical", choices = [true, false] }

[[objectives]]
metric = "accuracy"
direction = "maximize"

[[objectives]]
metric = "energy"
direction = "minimize"

[sampler]
name = "grid"
seed = 3
options = { levels = 4 }

[pruner]
name = "median"
options = { n_startup_trials = 3 }

[stop]
n_trials = 20
timeout = "2h"
energy_budget = "50kJ"
target = 0.9

[objective]
kind = "command"
command = ["python", "train.py", "--lr", "{lr}"]
"#;

    #[test]
    fn parses_the_paper_study() {
        let c = StudyConfig::from_toml(PAPER).unwrap();
        assert_eq!(c.name, "paper");
        assert_eq!(c.space.len(), 4);
        assert_eq!(c.objectives.len(), 2);
        assert_eq!(c.stop.n_trials, Some(20));
        assert_eq!(c.stop.timeout, Some(Duration::from_secs(7200)));
        assert_eq!(c.stop.energy_budget, Some(Joules(50_000.0)));
        assert_eq!(c.objective.command[3], "{lr}");
        let back = StudyConfig::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c, "the stored JSON form round-trips");
    }

    #[test]
    fn defaults_apply() {
        let c = StudyConfig::from_toml(
            "name = \"x\"\n[space]\nlr = { type = \"float\", low = 0.1, high = 1.0 }\n[stop]\nn_trials = 3\n",
        )
        .unwrap();
        assert_eq!(c.objectives, default_objectives());
        assert_eq!(c.sampler.name, "random");
        assert_eq!(c.pruner.name, "none");
    }

    fn err(text: &str) -> String {
        StudyConfig::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn bad_input_gives_clear_errors() {
        assert!(err("name = ").contains("malformed study TOML"));
        let inverted = PAPER.replace("low = 0.1, high = 0.999", "low = 0.9, high = 0.1");
        let e = err(&inverted);
        assert!(e.contains("beta1") && e.contains("inverted"), "{e}");
        let unknown = PAPER.replace("name = \"grid\"", "name = \"bayes\"");
        let e = err(&unknown);
        assert!(
            e.contains("unknown sampler \"bayes\"") && e.contains("gp, tpe"),
            "{e}"
        );
        let e = err(&PAPER.replace("name = \"median\"", "name = \"hyperband\""));
        assert!(e.contains("known pruners"), "{e}");
        let e = err(&PAPER.replace("levels = 4", "lvls = 4"));
        assert!(
            e.contains("no option \"lvls\"") && e.contains("levels"),
            "{e}"
        );
        let e = err(&PAPER.replace("\"50kJ\"", "\"50 kW\""));
        assert!(e.contains("unknown energy unit"), "{e}");
        let e = err(&PAPER
            .replace(
                "[stop]\nn_trials = 20\ntimeout = \"2h\"\nenergy_budget = \"50kJ\"\ntarget = 0.9\n",
                "",
            )
            .replace("name = \"grid\"", "name = \"random\"")
            .replace("options = { levels = 4 }", ""));
        assert!(e.contains("no stopping rule"), "{e}");
        let e = err(&PAPER.replace("n_trials = 20", "n_trails = 20"));
        assert!(e.contains("n_trails"), "{e}");
        let e = err(&PAPER.replace(
            "[space]\n",
            "[space]\nbad = { type = \"float\", low = 1.0, high = 1.0 }\n",
        ));
        assert!(e.contains("bad") && e.contains("empty or inverted"), "{e}");
    }

    #[test]
    fn nsga2_options_parse_from_toml_and_are_checked() {
        let toml = PAPER
            .replace("name = \"grid\"", "name = \"nsga2\"")
            .replace(
                "options = { levels = 4 }",
                "options = { population_size = 30, eta_mutation = 10.0, mutation_prob = 0.2 }",
            );
        let c = StudyConfig::from_toml(&toml).unwrap();
        let s = build_sampler(&c.sampler).unwrap();
        assert_eq!(s.name(), "nsga2");
        let o: crate::sampler::nsga2::Nsga2Options =
            options_into("sampler", "nsga2", &c.sampler.options).unwrap();
        assert_eq!(o.population_size, 30);
        assert_eq!(o.mutation_prob, Some(0.2));
        assert_eq!(o.eta_mutation, 10.0);
        assert_eq!(o.crossover_prob, 0.9, "unset options keep their defaults");
        let e = err(&toml.replace("population_size = 30", "population_size = 1"));
        assert!(e.contains("population_size must be at least 2"), "{e}");
        let e = err(&toml.replace("population_size = 30", "pop_size = 30"));
        assert!(
            e.contains("no option \"pop_size\"") && e.contains("population_size"),
            "{e}"
        );
    }

    #[test]
    fn tpe_bandwidth_rule_parses_from_toml() {
        use crate::sampler::tpe::{Bandwidth, TpeOptions};
        let toml = PAPER.replace("name = \"grid\"", "name = \"tpe\"").replace(
            "options = { levels = 4 }",
            "options = { bandwidth = \"optuna\", gamma = 0.1 }",
        );
        let c = StudyConfig::from_toml(&toml).unwrap();
        let o: TpeOptions = options_into("sampler", "tpe", &c.sampler.options).unwrap();
        assert_eq!(o.bandwidth, Bandwidth::Optuna);
        assert_eq!(o.gamma, 0.1);
        assert_eq!(TpeOptions::default().bandwidth, Bandwidth::Neighbour);
        let e = err(&toml.replace("\"optuna\"", "\"silverman\""));
        assert!(e.contains("silverman") && e.contains("scott"), "{e}");
    }

    #[test]
    fn energies_and_durations_parse_with_units() {
        assert_eq!(parse_energy("50kJ").unwrap(), Joules(50_000.0));
        assert_eq!(parse_energy("2.5 MJ").unwrap(), Joules(2_500_000.0));
        assert_eq!(parse_energy("300 J").unwrap(), Joules(300.0));
        assert_eq!(parse_energy("1 kWh").unwrap(), Joules(3.6e6));
        assert_eq!(parse_energy("12").unwrap(), Joules(12.0));
        assert!(parse_energy("-5 J").is_err());
        assert!(parse_energy("lots").is_err());
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30min").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn every_listed_sampler_and_pruner_builds() {
        for name in SAMPLERS {
            let spec = SamplerSpec {
                name: name.to_string(),
                seed: 1,
                options: serde_json::Map::new(),
            };
            let s = build_sampler(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!s.name().is_empty());
        }
        for name in PRUNERS {
            let spec = PrunerSpec {
                name: name.to_string(),
                options: serde_json::Map::new(),
            };
            build_pruner(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
