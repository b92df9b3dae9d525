//! The results: one table on stdout, `results.json` and `chart.svg`.
//!
//! Every figure is lower-is-better except rates (units ending in `/s`:
//! round trips/s, requests/s), where higher is better. spool's ratio is
//! its median over the best peer median in the row (the lowest, or the
//! highest for a rate): below 1 spool is ahead, or above 1 for a rate.
//!
//! A system without the primitive a scenario needs (tokio has no rendezvous
//! channel, Go no unbounded one, crossbeam-channel no mutex) has a
//! [`Cell::NotApplicable`]: `n/a` in the table with its reason in a note,
//! `{"not_applicable": reason}` in the JSON and the reason in the chart —
//! never a number, and never counted as the best peer.

use std::fmt::Write as _;
use std::time::Duration;

use crate::child::Outcome;
use crate::sys::Machine;
use crate::SYSTEMS;

/// One system's samples of one metric, or why it has none.
pub enum Cell {
    Values(Vec<f64>),
    Failed(String),
    Skipped(String),
    /// The system has no such primitive; the reason says what it lacks.
    NotApplicable(String),
}

impl Cell {
    pub fn empty() -> Cell {
        Cell::Values(Vec::new())
    }

    /// True once the cell failed or was skipped: no more samples are taken.
    pub fn is_final(&self) -> bool {
        !matches!(self, Cell::Values(_))
    }

    /// Adds `metric` from one child's outcome.
    pub fn record(&mut self, outcome: &Outcome, metric: &str) {
        *self = match (std::mem::replace(self, Cell::empty()), outcome) {
            (Cell::Values(mut v), Outcome::Measured(values)) => {
                match values.iter().find(|(m, _)| m == metric) {
                    Some((_, x)) => {
                        v.push(*x);
                        Cell::Values(v)
                    }
                    None => Cell::Failed(format!("the child did not report {metric}")),
                }
            }
            (Cell::Values(_), Outcome::Failed(why)) => Cell::Failed(why.clone()),
            (Cell::Values(_), Outcome::Skipped(why)) => Cell::Skipped(why.clone()),
            (Cell::Values(_), Outcome::NotApplicable(why)) => Cell::NotApplicable(why.clone()),
            (done, _) => done,
        }
    }

    /// (median, min, max) if there are samples.
    pub fn stats(&self) -> Option<(f64, f64, f64)> {
        let Cell::Values(v) = self else { return None };
        if v.is_empty() {
            return None;
        }
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Some((median, v[0], v[v.len() - 1]))
    }
}

/// One row of the table: one metric of one scenario across the systems.
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub unit: String,
    pub note: Option<String>,
    /// In `SYSTEMS` order.
    pub cells: Vec<Cell>,
}

impl Row {
    /// True for a rate (a unit ending in `/s`), where higher is better.
    pub fn higher_is_better(&self) -> bool {
        self.unit.ends_with("/s")
    }

    /// spool's median over the best peer's, and that peer's name.
    pub fn ratio(&self) -> Option<(f64, &'static str)> {
        let (spool, _, _) = self.cells[0].stats()?;
        let peers = self.cells[1..]
            .iter()
            .zip(&SYSTEMS[1..])
            .filter_map(|(c, name)| c.stats().map(|(m, _, _)| (m, *name)));
        let (best, name) = if self.higher_is_better() {
            peers.max_by(|a, b| a.0.total_cmp(&b.0))?
        } else {
            peers.min_by(|a, b| a.0.total_cmp(&b.0))?
        };
        Some((spool / best, name))
    }

    /// The ratio column: `0.85x (go)`, with the direction for a rate.
    fn ratio_text(&self) -> Option<String> {
        let (ratio, best) = self.ratio()?;
        let higher = if self.higher_is_better() {
            ", higher is better"
        } else {
            ""
        };
        Some(format!("{ratio:.2}x ({best}){higher}"))
    }

    fn label(&self) -> String {
        format!("{} {}", self.scenario, self.unit)
    }
}

/// A figure with about four significant digits, no more than one decimal.
fn fmt(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn cell_text(cell: &Cell) -> String {
    match (cell, cell.stats()) {
        (_, Some((median, min, max))) => format!("{} ({}–{})", fmt(median), fmt(min), fmt(max)),
        (Cell::Failed(_), _) => "failed [e]".into(),
        (Cell::Skipped(_), _) => "skipped [e]".into(),
        (Cell::NotApplicable(_), _) => "n/a".into(),
        _ => "-".into(),
    }
}

pub fn print_table(rows: &[Row], mode: &str, machine: &Machine, elapsed: Duration) {
    println!(
        "spool vs peers ({mode} run, {:.0} s): median (min–max) over samples taken in rounds; lower is better except for rates (/s)",
        elapsed.as_secs_f64()
    );
    println!("machine: {}", machine.summary());
    println!(
        "load average (1, 5, 15 min) on {} cores: {}",
        machine.cores, machine.load
    );
    let label_width = rows
        .iter()
        .map(|r| r.label().chars().count())
        .max()
        .unwrap_or(8);
    let width = 22;
    let mut header = format!("{:<label_width$}", "scenario");
    for system in SYSTEMS {
        header += &format!(" | {system:<width$}");
    }
    header += " | spool / best peer";
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
    for row in rows {
        let mut line = format!("{:<label_width$}", row.label());
        for cell in &row.cells {
            line += &format!(" | {:<width$}", cell_text(cell));
        }
        match row.ratio_text() {
            Some(text) => line += &format!(" | {text}"),
            None => line += " | -",
        }
        println!("{line}");
    }
    // A note shared by many rows (the channel matrix's) is said once.
    let mut shared: Vec<(&str, Vec<&str>)> = Vec::new();
    for row in rows {
        if let Some(note) = &row.note {
            match shared.iter_mut().find(|(n, _)| n == note) {
                Some((_, scenarios)) if scenarios.last() == Some(&row.scenario.as_str()) => {}
                Some((_, scenarios)) => scenarios.push(&row.scenario),
                None => shared.push((note, vec![&row.scenario])),
            }
        }
    }
    let mut notes: Vec<String> = shared
        .into_iter()
        .map(|(note, scenarios)| match scenarios.as_slice() {
            [one] => format!("{one}: {note}"),
            [first, .., last] => format!("{first} … {last} ({} rows): {note}", scenarios.len()),
            [] => unreachable!("a note without a row"),
        })
        .collect();
    for row in rows {
        for (cell, system) in row.cells.iter().zip(SYSTEMS) {
            // A skip (Go not installed) and a missing primitive are said
            // once per system and reason, a failure once per scenario.
            let line = match cell {
                Cell::Failed(why) => format!("[e] {system}, {}: failed: {why}", row.scenario),
                Cell::Skipped(why) => format!("[e] {system}: skipped: {why}"),
                Cell::NotApplicable(why) => format!("n/a {system}: {why}"),
                Cell::Values(_) => continue,
            };
            if !notes.contains(&line) {
                notes.push(line);
            }
        }
    }
    for note in notes {
        println!("{note}");
    }
}

/// `s` as a JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            c if (c as u32) < 0x20 => out += &format!("\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out + "\""
}

/// A finite number, or `null`.
fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

pub fn json(rows: &[Row], mode: &str, machine: &Machine, elapsed: Duration) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{{");
    let _ = writeln!(o, "  \"mode\": {},", json_str(mode));
    let _ = writeln!(o, "  \"seconds\": {:.1},", elapsed.as_secs_f64());
    let _ = writeln!(o, "  \"machine\": {{");
    let fields = [
        ("cpu", machine.cpu.clone()),
        ("cores", machine.cores.to_string()),
        ("memory_gib", format!("{:.1}", machine.memory_gib)),
        ("kernel", machine.kernel.clone()),
        ("vm_max_map_count", machine.max_map_count.clone()),
        ("rustc", machine.rustc.clone()),
        ("tokio", machine.tokio.clone()),
        ("may", machine.may.clone()),
        ("go", machine.go.clone()),
        ("load_average_1_5_15_min", machine.load.clone()),
    ];
    for (i, (k, v)) in fields.iter().enumerate() {
        let comma = if i + 1 < fields.len() { "," } else { "" };
        let _ = writeln!(o, "    {}: {}{comma}", json_str(k), json_str(v));
    }
    let _ = writeln!(o, "  }},");
    let _ = writeln!(o, "  \"rows\": [");
    for (r, row) in rows.iter().enumerate() {
        let _ = writeln!(o, "    {{");
        let _ = writeln!(o, "      \"scenario\": {},", json_str(&row.scenario));
        let _ = writeln!(o, "      \"metric\": {},", json_str(&row.metric));
        let _ = writeln!(o, "      \"unit\": {},", json_str(&row.unit));
        let note = row.note.as_deref().map_or("null".into(), json_str);
        let _ = writeln!(o, "      \"note\": {note},");
        match row.ratio() {
            Some((ratio, best)) => {
                let _ = writeln!(
                    o,
                    "      \"spool_ratio_to_best_peer\": {},",
                    json_num(ratio)
                );
                let _ = writeln!(o, "      \"best_peer\": {},", json_str(best));
                let _ = writeln!(o, "      \"higher_is_better\": {},", row.higher_is_better());
            }
            None => {
                let _ = writeln!(o, "      \"spool_ratio_to_best_peer\": null,");
                let _ = writeln!(o, "      \"best_peer\": null,");
                let _ = writeln!(o, "      \"higher_is_better\": {},", row.higher_is_better());
            }
        }
        let _ = writeln!(o, "      \"systems\": {{");
        for (i, (cell, system)) in row.cells.iter().zip(SYSTEMS).enumerate() {
            let body = match (cell, cell.stats()) {
                (Cell::Values(v), Some((median, min, max))) => format!(
                    "{{\"median\": {}, \"min\": {}, \"max\": {}, \"samples\": [{}]}}",
                    json_num(median),
                    json_num(min),
                    json_num(max),
                    v.iter()
                        .map(|x| json_num(*x))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (Cell::Failed(why), _) => format!("{{\"error\": {}}}", json_str(why)),
                (Cell::Skipped(why), _) => format!("{{\"skipped\": {}}}", json_str(why)),
                (Cell::NotApplicable(why), _) => {
                    format!("{{\"not_applicable\": {}}}", json_str(why))
                }
                _ => "{\"samples\": []}".into(),
            };
            let comma = if i + 1 < SYSTEMS.len() { "," } else { "" };
            let _ = writeln!(o, "        {}: {body}{comma}", json_str(system));
        }
        let _ = writeln!(o, "      }}");
        let comma = if r + 1 < rows.len() { "," } else { "" };
        let _ = writeln!(o, "    }}{comma}");
    }
    let _ = writeln!(o, "  ]");
    let _ = writeln!(o, "}}");
    o
}

/// XML-escapes `s`.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One color per system; spool's stands out.
const COLORS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#7f7f7f", "#17becf", "#9467bd",
];

/// Small multiples: one panel per row, one bar per system on a log scale
/// (the systems differ by up to three orders of magnitude), the median as
/// the bar and a whisker from min to max.
pub fn svg(rows: &[Row], mode: &str, machine: &Machine) -> String {
    const WIDTH: f64 = 960.0;
    const LEFT: f64 = 80.0; // system names
    const RIGHT: f64 = 270.0; // value labels and the ratio
    const BAR: f64 = 18.0;
    const GAP: f64 = 6.0;
    const PANEL_TOP: f64 = 42.0; // the panel title and note
    const PANEL_BOTTOM: f64 = 28.0; // the axis labels
    let panel_height = PANEL_TOP + SYSTEMS.len() as f64 * (BAR + GAP) + PANEL_BOTTOM;
    let top = 86.0;
    let height = top + rows.len() as f64 * panel_height + 10.0;
    let plot_width = WIDTH - LEFT - RIGHT;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="16" font-weight="bold">spool vs peers — lower is better except rates (/s) (median bar, min–max whisker, log scale)</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="40" fill="#555">{}</text>"##,
        xml(&format!("{mode} run; {}", machine.hardware()))
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="56" fill="#555">{}</text>"##,
        xml(&machine.toolchains())
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="72" fill="#555">{}</text>"##,
        xml(&format!("load average (1, 5, 15 min) {}", machine.load))
    );

    for (r, row) in rows.iter().enumerate() {
        let y0 = top + r as f64 * panel_height;
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}" font-size="13" font-weight="bold">{}</text>"#,
            y0 + 20.0,
            xml(&if row.higher_is_better() {
                format!("{} (higher is better)", row.label())
            } else {
                row.label()
            })
        );
        if let Some(note) = &row.note {
            let _ = writeln!(
                s,
                r##"<text x="10" y="{}" font-size="11" fill="#555">{}</text>"##,
                y0 + 34.0,
                xml(note)
            );
        }
        // Log-scale axis over the decades the row spans.
        let values: Vec<f64> = row
            .cells
            .iter()
            .filter_map(Cell::stats)
            .flat_map(|(_, lo, hi)| [lo, hi])
            .filter(|v| *v > 0.0)
            .collect();
        if values.is_empty() {
            continue;
        }
        let lo = values
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .log10()
            .floor();
        let hi = values
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
            .log10()
            .ceil()
            .max(lo + 1.0);
        let x = |v: f64| LEFT + (v.max(10f64.powf(lo)).log10() - lo) / (hi - lo) * plot_width;
        let bars_top = y0 + PANEL_TOP;
        let bars_bottom = bars_top + SYSTEMS.len() as f64 * (BAR + GAP);
        let mut decade = lo;
        while decade <= hi {
            let gx = x(10f64.powf(decade));
            let _ = writeln!(
                s,
                r##"<line x1="{gx:.1}" y1="{bars_top:.1}" x2="{gx:.1}" y2="{bars_bottom:.1}" stroke="#ddd"/>"##
            );
            let _ = writeln!(
                s,
                r##"<text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
                bars_bottom + 14.0,
                xml(&fmt(10f64.powf(decade)))
            );
            decade += 1.0;
        }
        for (i, (cell, system)) in row.cells.iter().zip(SYSTEMS).enumerate() {
            let by = bars_top + i as f64 * (BAR + GAP);
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end"{}>{system}</text>"#,
                LEFT - 6.0,
                by + BAR * 0.7,
                if i == 0 { r#" font-weight="bold""# } else { "" }
            );
            match (cell, cell.stats()) {
                (_, Some((median, min, max))) => {
                    let w = (x(median) - LEFT).max(1.0);
                    let _ = writeln!(
                        s,
                        r#"<rect x="{LEFT}" y="{by:.1}" width="{w:.1}" height="{BAR}" fill="{}"/>"#,
                        COLORS[i]
                    );
                    let wy = by + BAR / 2.0;
                    let _ = writeln!(
                        s,
                        r#"<line x1="{:.1}" y1="{wy:.1}" x2="{:.1}" y2="{wy:.1}" stroke="black" stroke-width="1.5"/>"#,
                        x(min),
                        x(max)
                    );
                    let _ = writeln!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}">{} {}</text>"#,
                        WIDTH - RIGHT + 8.0,
                        by + BAR * 0.7,
                        xml(&fmt(median)),
                        xml(&row.unit)
                    );
                }
                (Cell::Failed(why) | Cell::Skipped(why) | Cell::NotApplicable(why), _) => {
                    let (kind, color) = match cell {
                        Cell::Failed(_) => ("failed", "#a00"),
                        Cell::Skipped(_) => ("skipped", "#a00"),
                        _ => ("n/a", "#777"),
                    };
                    let mut why: String = why.chars().take(95).collect();
                    if why.len() < cell_len(cell) {
                        why += "…";
                    }
                    let _ = writeln!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}" fill="{color}" font-style="italic">{kind}: {}</text>"#,
                        LEFT + 4.0,
                        by + BAR * 0.7,
                        xml(&why)
                    );
                }
                _ => {}
            }
        }
        if let Some((ratio, best)) = row.ratio() {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-weight="bold">spool / best peer ({best}): {ratio:.2}x</text>"#,
                WIDTH - RIGHT + 8.0,
                y0 + 20.0
            );
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

/// Length of a failed or skipped cell's message, in bytes.
fn cell_len(cell: &Cell) -> usize {
    match cell {
        Cell::Failed(w) | Cell::Skipped(w) | Cell::NotApplicable(w) => w.len(),
        Cell::Values(_) => 0,
    }
}
