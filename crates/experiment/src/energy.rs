//! What the energy behind an analysis is, and what a verdict may say on it.
//!
//! Every analysis here works on the *attributed* figure of each run (its own processes' share,
//! see `greenlab_meter::process`) and never on a missing one: a run whose energy is unknown
//! makes the energy analysis impossible rather than zero-valued. Verdicts follow from that:
//! no verdict on energy that was not measured ([`Verdict::CannotJudge`]), and a verdict on
//! estimated energy says so.

use greenlab_meter::{EnergyBasis, Provenance};
use greenlab_report::{Finding, Verdict};
use greenlab_tune::TrialEnergy;

/// The start of every "not measured" reason, so that callers can tell it from other failures.
pub const NOT_MEASURED: &str = "no energy measured";

/// One figure per run, or why they cannot all be had.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    /// Joules per run, in the order given (only when every run's figure is known).
    pub joules: Result<Vec<f64>, String>,
    /// What the known figures are.
    pub provenance: Provenance,
}

/// The `basis` figures of `runs` (`(label, energy)` per run; the label names the run in the
/// reason when one is missing).
pub fn figures<'a>(
    runs: impl IntoIterator<Item = (String, Option<&'a TrialEnergy>)>,
    basis: EnergyBasis,
) -> Figures {
    let mut joules = Vec::new();
    let mut provenances = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut total = 0;
    for (label, energy) in runs {
        total += 1;
        match energy.and_then(|e| e.figure(basis).map(|j| (j, e))) {
            Some((j, e)) => {
                joules.push(j.0);
                provenances.push(e.provenance());
            }
            None => {
                provenances.push(Provenance::NotMeasured);
                if missing.len() < 3 {
                    let why = energy
                        .and_then(|e| e.why_unknown(basis))
                        .unwrap_or_else(|| "no energy was recorded".into());
                    missing.push(format!("{label}: {why}"));
                } else {
                    missing.push(String::new());
                }
            }
        }
    }
    let provenance = Provenance::combine(provenances);
    if missing.is_empty() {
        return Figures {
            joules: Ok(joules),
            provenance,
        };
    }
    let shown: Vec<&String> = missing.iter().filter(|m| !m.is_empty()).collect();
    Figures {
        joules: Err(format!(
            "{NOT_MEASURED} for {} of {total} runs ({}{})",
            missing.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            if missing.len() > shown.len() {
                "; …"
            } else {
                ""
            }
        )),
        provenance,
    }
}

/// What a verdict resting on `provenance` energy must add to its line, if anything.
pub fn qualifier(provenance: Provenance) -> Option<&'static str> {
    match provenance {
        Provenance::Estimated => Some("on estimated energy: the estimate follows run time"),
        Provenance::Mixed => {
            Some("on energy of mixed sources (counters and estimates): compare with care")
        }
        Provenance::Counter | Provenance::IntegratedPower | Provenance::NotMeasured => None,
    }
}

/// A finding about energy: `CannotJudge` with the reason when the energy is not known,
/// otherwise `verdict` qualified by what the energy is.
pub fn energy_finding(
    claim: &str,
    judged: Result<(Verdict, String), String>,
    provenance: Provenance,
) -> Finding {
    match judged {
        // The line says that energy was not measured; the evidence says where and why.
        Err(why) => Finding::new(claim, Verdict::CannotJudge, why).qualified(NOT_MEASURED),
        Ok((verdict, evidence)) => {
            let f = Finding::new(claim, verdict, evidence);
            match qualifier(provenance) {
                Some(q) => f.qualified(q),
                None => f,
            }
        }
    }
}

/// One sentence saying what the energy figures of a section are, computed from them.
pub fn provenance_line(provenance: Provenance) -> String {
    match provenance {
        Provenance::Counter => {
            "Energy figures come from hardware energy counters, attributed to each run's own \
             processes."
                .into()
        }
        Provenance::IntegratedPower => {
            "Energy figures come from integrated power samples, attributed to each run's own \
             processes."
                .into()
        }
        Provenance::Estimated => {
            "Energy figures are ESTIMATED (CPU time × the model's power per CPU: no energy \
             counter worked on this machine); they follow run time."
                .into()
        }
        Provenance::Mixed => {
            "Energy figures are MIXED: some runs were measured by counters, others estimated or \
             not measured; see each run."
                .into()
        }
        Provenance::NotMeasured => {
            "Energy was NOT MEASURED here (no energy source worked; see `greenlab meters`): no \
             energy figure or energy verdict is given."
                .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use greenlab_meter::{Joules, Seconds, Source};

    use super::*;

    fn energy(j: Option<f64>, source: Source) -> TrialEnergy {
        TrialEnergy {
            total: j.map(|j| Joules(j * 2.0)),
            attributed: j.map(Joules),
            source,
            duration: Seconds(1.0),
            domains: vec![("cpu-package-0".into(), j.map(Joules), source)],
            unknown: j.is_none().then(|| "psys: the counter froze".to_owned()),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn figures_are_all_known_or_refused_with_the_runs_named() {
        let a = energy(Some(3.0), Source::Estimated);
        let b = energy(Some(4.0), Source::Estimated);
        let f = figures(
            [
                ("run 0".to_owned(), Some(&a)),
                ("run 1".to_owned(), Some(&b)),
            ],
            EnergyBasis::Attributed,
        );
        assert_eq!(f.joules, Ok(vec![3.0, 4.0]));
        assert_eq!(f.provenance, Provenance::Estimated);
        let machine = figures([("run 0".to_owned(), Some(&a))], EnergyBasis::Machine);
        assert_eq!(machine.joules, Ok(vec![6.0]));
        let dead = energy(None, Source::Counter);
        let f = figures(
            [
                ("run 0".to_owned(), Some(&a)),
                ("run 7".to_owned(), Some(&dead)),
            ],
            EnergyBasis::Attributed,
        );
        let err = f.joules.err().unwrap_or_default();
        assert!(err.starts_with(NOT_MEASURED), "{err}");
        assert!(err.contains("run 7: psys: the counter froze"), "{err}");
        assert_eq!(f.provenance, Provenance::Mixed);
    }

    #[test]
    fn verdicts_never_judge_unmeasured_energy_and_say_when_it_is_estimated() {
        let f = energy_finding(
            "claim",
            Err(format!("{NOT_MEASURED} for 8 of 8 runs (psys froze)")),
            Provenance::NotMeasured,
        );
        assert_eq!(f.verdict, Verdict::CannotJudge);
        assert_eq!(f.verdict_line(), "cannot judge: no energy measured");
        assert!(f.evidence.contains("psys froze"), "{}", f.evidence);
        let f = energy_finding(
            "claim",
            Ok((Verdict::Reproduced, "η² = 0.97".into())),
            Provenance::Estimated,
        );
        assert_eq!(
            f.verdict_line(),
            "reproduced, on estimated energy: the estimate follows run time"
        );
        let f = energy_finding(
            "claim",
            Ok((Verdict::Reproduced, "η² = 0.97".into())),
            Provenance::Counter,
        );
        assert_eq!(f.verdict_line(), "reproduced");
    }
}
