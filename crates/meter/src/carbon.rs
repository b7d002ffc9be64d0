//! Carbon: a separate step on top of energy. Energy × PUE × grid carbon intensity.
//!
//! The built-in table gives the average carbon intensity of electricity generation per
//! country, in grams of CO2-equivalent per kWh, for the year 2023, rounded to whole grams.
//! Source: Ember, "Yearly Electricity Data" (2024 release), as published by Our World in Data,
//! "Carbon intensity of electricity generation" (https://ourworldindata.org/grapher/carbon-intensity-electricity).
//! Every value was checked against the same Ember/OWID series as CodeCarbon 3.3.2 ships it
//! (`codecarbon/data/private_infra/global_energy_mix.json`, field `carbon_intensity`); that
//! series has 2022 as its latest year for Indonesia, Iceland and Saudi Arabia, so those three
//! rows are 2022 figures.
//! Generation averages are not marginal or hourly figures: pass `--carbon-intensity` for a
//! better number from your grid operator (or your cloud provider's region data).

use serde::{Deserialize, Serialize};

use crate::error::MeterError;
use crate::units::{GramsCo2e, Joules};

/// Grid carbon intensity in grams of CO2-equivalent per kWh.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CarbonIntensity(pub f64);

impl std::fmt::Display for CarbonIntensity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} gCO2e/kWh", self.0)
    }
}

/// The world average of the same source and year, used when no region is given.
pub const WORLD: CarbonIntensity = CarbonIntensity(481.0);

/// (ISO 3166-1 alpha-3 code, name, gCO2e/kWh in 2023). See the module documentation.
const TABLE: &[(&str, &str, f64)] = &[
    ("ARG", "Argentina", 354.0),
    ("AUS", "Australia", 549.0),
    ("AUT", "Austria", 110.0),
    ("BEL", "Belgium", 138.0),
    ("BRA", "Brazil", 98.0),
    ("CAN", "Canada", 170.0),
    ("CHE", "Switzerland", 35.0),
    ("CHN", "China", 582.0),
    ("CZE", "Czechia", 449.0),
    ("DEU", "Germany", 381.0),
    ("DNK", "Denmark", 151.0),
    ("ESP", "Spain", 174.0),
    ("FIN", "Finland", 79.0),
    ("FRA", "France", 56.0),
    ("GBR", "United Kingdom", 238.0),
    ("GRC", "Greece", 336.0),
    ("HUN", "Hungary", 204.0),
    ("IDN", "Indonesia", 675.0),
    ("IND", "India", 713.0),
    ("IRL", "Ireland", 291.0),
    ("ISL", "Iceland", 28.0),
    ("ITA", "Italy", 331.0),
    ("JPN", "Japan", 485.0),
    ("KOR", "South Korea", 431.0),
    ("MEX", "Mexico", 507.0),
    ("NLD", "Netherlands", 268.0),
    ("NOR", "Norway", 30.0),
    ("NZL", "New Zealand", 112.0),
    ("POL", "Poland", 662.0),
    ("PRT", "Portugal", 165.0),
    ("ROU", "Romania", 240.0),
    ("RUS", "Russia", 441.0),
    ("SAU", "Saudi Arabia", 706.0),
    ("SGP", "Singapore", 470.0),
    ("SWE", "Sweden", 41.0),
    ("TUR", "Turkey", 464.0),
    ("TWN", "Taiwan", 642.0),
    ("USA", "United States", 369.0),
    ("ZAF", "South Africa", 708.0),
];

/// The table's intensity for a country (ISO 3166-1 alpha-3, any case) or `WORLD`.
pub fn intensity_for(region: &str) -> Option<CarbonIntensity> {
    let code = region.trim().to_ascii_uppercase();
    if code == "WORLD" || code == "WLD" {
        return Some(WORLD);
    }
    TABLE
        .iter()
        .find(|(iso, _, _)| *iso == code)
        .map(|&(_, _, g)| CarbonIntensity(g))
}

/// The country's English name for a code the table knows.
pub fn country_name(region: &str) -> Option<&'static str> {
    let code = region.trim().to_ascii_uppercase();
    if code == "WORLD" || code == "WLD" {
        return Some("World");
    }
    TABLE
        .iter()
        .find(|(iso, _, _)| *iso == code)
        .map(|&(_, name, _)| name)
}

/// All codes the table knows, for error messages and `--help`.
pub fn known_regions() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(iso, _, _)| *iso)
}

/// Checks a user-supplied intensity (0 to 2000 gCO2e/kWh; coal is about 1000).
pub fn validate_intensity(g: f64) -> Result<CarbonIntensity, MeterError> {
    if !g.is_finite() || !(0.0..=2000.0).contains(&g) {
        return Err(MeterError::InvalidConfig {
            what: "carbon intensity",
            reason: format!("{g} gCO2e/kWh; pass a number between 0 and 2000"),
        });
    }
    Ok(CarbonIntensity(g))
}

/// Checks a power usage effectiveness (1.0 is a perfect data centre; 3 is very poor).
pub fn validate_pue(pue: f64) -> Result<f64, MeterError> {
    if !pue.is_finite() || !(1.0..=5.0).contains(&pue) {
        return Err(MeterError::InvalidConfig {
            what: "pue",
            reason: format!("{pue}; pass a number between 1.0 and 5.0 (1.0 counts IT power only)"),
        });
    }
    Ok(pue)
}

/// Emissions of `energy` drawn by IT equipment in a facility with the given PUE.
pub fn emissions(energy: Joules, intensity: CarbonIntensity, pue: f64) -> GramsCo2e {
    GramsCo2e(energy.kwh() * pue * intensity.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_rejects_unknown() {
        assert_eq!(intensity_for("fra"), Some(CarbonIntensity(56.0)));
        assert_eq!(intensity_for("World"), Some(WORLD));
        assert_eq!(intensity_for("XYZ"), None);
        assert_eq!(country_name("deu"), Some("Germany"));
        assert!(known_regions().any(|c| c == "USA"));
        // Codes are unique and sorted, so lookups cannot shadow each other.
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn one_kwh_at_pue_two() {
        let g = emissions(Joules(3.6e6), CarbonIntensity(100.0), 2.0);
        assert!((g.0 - 200.0).abs() < 1e-9);
        assert!(validate_pue(0.9).is_err());
        assert!(validate_pue(1.2).is_ok());
        assert!(validate_intensity(-1.0).is_err());
        assert!(validate_intensity(f64::NAN).is_err());
    }
}
