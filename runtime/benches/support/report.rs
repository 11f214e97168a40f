//! Figures (several repetitions of one measurement) and the one table they are printed in.

use std::fmt::Write as _;

/// The repetitions of one measurement, in the unit of its row.
#[derive(Clone, Debug, Default)]
pub(crate) struct Figure {
    samples: Vec<f64>,
    /// Why there are no samples, where the measurement could not run (a peer that needs
    /// `/dev/shm`, in the Lambda sandbox).
    failure: Option<String>,
}

impl Figure {
    pub(crate) fn from_samples(samples: Vec<f64>) -> Figure {
        Figure {
            samples,
            failure: None,
        }
    }

    /// A measurement that could not run, and why: printed as `fails: why`.
    pub(crate) fn failed(why: impl Into<String>) -> Figure {
        Figure {
            samples: Vec::new(),
            failure: Some(why.into()),
        }
    }

    pub(crate) fn push(&mut self, sample: f64) {
        self.samples.push(sample);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    /// The median (the mean of the middle two for an even count); NaN with no samples.
    pub(crate) fn median(&self) -> f64 {
        let sorted = self.sorted();
        match sorted.len() {
            0 => f64::NAN,
            len if len % 2 == 1 => sorted[len / 2],
            len => f64::midpoint(sorted[len / 2 - 1], sorted[len / 2]),
        }
    }

    /// `n: min–median–max`, or why the measurement failed.
    fn spread(&self) -> String {
        if let Some(why) = &self.failure {
            return format!("fails: {why}");
        }
        let sorted = self.sorted();
        match (sorted.first(), sorted.last()) {
            (Some(min), Some(max)) => format!(
                "{}: {}–{}–{}",
                sorted.len(),
                number(*min),
                number(self.median()),
                number(*max)
            ),
            _ => "0".to_owned(),
        }
    }
}

/// The table's columns.
const COLUMNS: usize = 12;

/// One line of the table: our figure for a workload, against one baseline.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) id: &'static str,
    pub(crate) measured: String,
    pub(crate) ours: Figure,
    pub(crate) baseline: Option<(&'static str, Figure)>,
    /// The goal now (`shared/BENCHMARKS.md`, first column of targets).
    pub(crate) target: &'static str,
    /// Whether the target is met; `None` where this row does not decide it.
    pub(crate) met: Option<bool>,
    /// The bar reached before, which must not regress (the second column); empty for a new
    /// workload.
    pub(crate) kept: &'static str,
    /// Whether the kept bar still holds; `None` where this row does not decide it.
    pub(crate) held: Option<bool>,
}

impl Row {
    /// Our median over the baseline's; `None` without a baseline or where it failed.
    pub(crate) fn ratio(&self) -> Option<f64> {
        let (_, baseline) = self.baseline.as_ref()?;
        let ratio = self.ours.median() / baseline.median();
        ratio.is_finite().then_some(ratio)
    }

    /// The row's cells, in the order of the table's columns.
    fn cells(&self) -> [String; COLUMNS] {
        let (name, figure, spread) = match &self.baseline {
            Some((name, figure)) if figure.failure.is_some() => {
                ((*name).to_owned(), String::new(), figure.spread())
            }
            Some((name, figure)) => ((*name).to_owned(), number(figure.median()), figure.spread()),
            None => ("—".to_owned(), String::new(), String::new()),
        };
        let ratio = self
            .ratio()
            .map_or_else(String::new, |ratio| format!("{}×", number(ratio)));
        let met = match self.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "",
        };
        let held = match self.held {
            Some(true) => "held",
            Some(false) => "REGRESSED",
            None => "",
        };
        [
            self.id.to_owned(),
            self.measured.clone(),
            number(self.ours.median()),
            self.ours.spread(),
            name,
            figure,
            spread,
            ratio,
            self.target.to_owned(),
            met.to_owned(),
            self.kept.to_owned(),
            held.to_owned(),
        ]
    }
}

/// Prints the rows as one aligned table, in the order given.
pub(crate) fn print_table(rows: &[Row]) {
    let header = [
        "id",
        "measured",
        "ours",
        "n: min–med–max",
        "baseline",
        "figure",
        "n: min–med–max",
        "ours/base",
        "target",
        "met",
        "kept bar",
        "held",
    ]
    .map(str::to_owned);
    let mut lines = vec![header];
    lines.extend(rows.iter().map(Row::cells));
    let mut widths = [0; COLUMNS];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        for (column, (cell, width)) in line.iter().zip(widths).enumerate() {
            let pad = width - cell.chars().count();
            // Text left, figures right.
            if matches!(column, 2 | 5 | 7) {
                let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        if index == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    print!("{out}");
}

/// Three significant figures or so, never in exponent form.
fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        // Below 1, as many decimals as three significant figures take (ours over
        // lambda_multiprocessing on W1 is about 0.0005).
        let (mut decimals, mut scaled) = (3, magnitude);
        while scaled < 0.1 && decimals < 12 {
            scaled *= 10.0;
            decimals += 1;
        }
        format!("{value:.decimals$}")
    }
}
