//! Medians and ranges of repeated measurements, shared by the bench
//! binaries (each includes this file with `#[path]`).
//!
//! A row has a few samples (3 to 21), so the median is computed exactly by
//! sorting them; a histogram (the load generator's `hdrhistogram`, which
//! holds millions of round trips) would only round these to its precision.

#![allow(dead_code)]

/// Repeated measurements of one quantity.
pub struct Sample {
    /// One value per sample, in the order taken.
    pub values: Vec<f64>,
}

impl Sample {
    /// Calls `measure` `n` times and keeps what it returns.
    pub fn collect(n: usize, mut measure: impl FnMut() -> f64) -> Sample {
        Sample {
            values: (0..n).map(|_| measure()).collect(),
        }
    }

    pub fn median(&self) -> f64 {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        }
    }

    pub fn min(&self) -> f64 {
        self.values.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.values
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}
