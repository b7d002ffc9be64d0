//! A small CSV table: columns by name, typed on request, with errors that say where.

use std::io::Read;
use std::path::Path;

use crate::design::Factor;
use crate::error::{Result, StatsError};

/// A typed column.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Every cell parsed as a number.
    Numeric(Vec<f64>),
    /// At least one cell did not.
    Text(Vec<String>),
}

/// A CSV file read whole: a header row and string cells, typed per column on request.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    source_name: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    lines: Vec<u64>,
}

impl Table {
    /// Reads a CSV file with a header row.
    ///
    /// # Errors
    /// The file cannot be opened, is not valid CSV, has rows of unequal length, or no header.
    pub fn from_path(path: &Path) -> Result<Table> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| StatsError::Csv {
            source_name: name.clone(),
            message: format!("cannot open: {e}"),
        })?;
        Table::from_reader(file, &name)
    }

    /// Reads CSV from any reader; `source_name` appears in error messages.
    ///
    /// # Errors
    /// As [`Table::from_path`].
    pub fn from_reader(reader: impl Read, source_name: &str) -> Result<Table> {
        let csv_err = |e: csv::Error| StatsError::Csv {
            source_name: source_name.to_string(),
            message: e.to_string(),
        };
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers: Vec<String> = rdr
            .headers()
            .map_err(csv_err)?
            .iter()
            .map(String::from)
            .collect();
        if headers.is_empty() || headers.iter().all(String::is_empty) {
            return Err(StatsError::Csv {
                source_name: source_name.to_string(),
                message: "no header row; the first line must name the columns".into(),
            });
        }
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for record in rdr.records() {
            let record = record.map_err(csv_err)?;
            lines.push(record.position().map_or(0, |p| p.line()));
            rows.push(record.iter().map(String::from).collect());
        }
        Ok(Table {
            source_name: source_name.to_string(),
            headers,
            rows,
            lines,
        })
    }

    /// Column names.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| StatsError::UnknownName {
                what: "column",
                name: name.to_string(),
                available: self.headers.join(", "),
            })
    }

    /// The column's cells as text.
    ///
    /// # Errors
    /// Unknown column (the message lists the ones that exist).
    pub fn text(&self, name: &str) -> Result<Vec<String>> {
        let i = self.index(name)?;
        Ok(self.rows.iter().map(|r| r[i].clone()).collect())
    }

    /// The column as numbers.
    ///
    /// # Errors
    /// Unknown column, or a cell that is empty or not a finite number (the message names the
    /// line and the text found).
    pub fn numeric(&self, name: &str) -> Result<Vec<f64>> {
        let i = self.index(name)?;
        self.rows
            .iter()
            .zip(&self.lines)
            .map(|(r, &line)| {
                r[i].parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| StatsError::NotNumeric {
                        source_name: self.source_name.clone(),
                        column: name.to_string(),
                        line,
                        value: r[i].clone(),
                    })
            })
            .collect()
    }

    /// The column typed: numeric if every cell parses as a finite number, text otherwise.
    ///
    /// # Errors
    /// Unknown column.
    pub fn column(&self, name: &str) -> Result<Column> {
        match self.numeric(name) {
            Ok(v) => Ok(Column::Numeric(v)),
            Err(StatsError::NotNumeric { .. }) => Ok(Column::Text(self.text(name)?)),
            Err(e) => Err(e),
        }
    }

    /// The column as a factor (its cells are level labels).
    ///
    /// # Errors
    /// Unknown column (reported as an unknown factor).
    pub fn factor(&self, name: &str) -> Result<Factor> {
        match self.text(name) {
            Ok(v) => Ok(Factor::new(name, v)),
            Err(StatsError::UnknownName {
                name, available, ..
            }) => Err(StatsError::UnknownName {
                what: "factor",
                name,
                available,
            }),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "conv,energy,note\n1, 10.5,a\n4,30,b\n";

    #[test]
    fn typed_columns() {
        let t = Table::from_reader(CSV.as_bytes(), "t.csv").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.column("energy").unwrap(),
            Column::Numeric(vec![10.5, 30.0])
        );
        assert_eq!(
            t.column("note").unwrap(),
            Column::Text(vec!["a".into(), "b".into()])
        );
        assert_eq!(t.factor("conv").unwrap().levels(), ["1", "4"]);
    }

    #[test]
    fn errors_name_the_problem() {
        let t = Table::from_reader(CSV.as_bytes(), "t.csv").unwrap();
        let e = t.numeric("note").unwrap_err().to_string();
        assert!(
            e.contains("t.csv") && e.contains("line 2") && e.contains("`a`"),
            "{e}"
        );
        let e = t.factor("relu").unwrap_err().to_string();
        assert!(
            e.contains("unknown factor `relu`") && e.contains("conv, energy, note"),
            "{e}"
        );
        let ragged = Table::from_reader("a,b\n1\n".as_bytes(), "r.csv");
        assert!(matches!(ragged, Err(StatsError::Csv { .. })));
        let nan = Table::from_reader("a\nNaN\n".as_bytes(), "n.csv").unwrap();
        assert!(nan.numeric("a").is_err());
    }
}
