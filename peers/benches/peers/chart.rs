//! `chart.svg`: small multiples, one panel per row of the table, drawn
//! with plotters' SVG backend.
//!
//! Each panel has one horizontal bar per system on a log scale (the
//! systems differ by up to three orders of magnitude): the bar is the
//! median, a black whisker spans min to max. The panel's title is the row
//! (with "higher is better" for a rate) and spool's ratio to the best peer,
//! its note is under the title, each bar's median is written at the right,
//! and a system without figures says why in place of its bar (`failed`,
//! `skipped`, `n/a`). The log axis spans the decades the row's values
//! cover, with a grid line and a label at each tick plotters picks.
//!
//! plotters places the bars, whiskers, grid and tick labels; the texts
//! around the panels are placed here, in the canvas's pixels. Text sizes
//! are the SVG viewer's (plotters has no font metrics without its `ttf`
//! feature, which the chart does not need).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{fmt, Cell, Row};
use crate::sys::Machine;
use crate::SYSTEMS;

/// Canvas width, px.
const WIDTH: u32 = 960;
/// The system names, left of the bars.
const LEFT: u32 = 80;
/// Each bar's median, right of the plot.
const RIGHT: u32 = 270;
/// Height of one bar and the gap under it.
const BAR: u32 = 24;
/// The panel's title and note, above the bars.
const PANEL_TOP: u32 = 42;
/// The axis labels, under the bars.
const PANEL_BOTTOM: u32 = 28;
/// The chart's title and the machine, above the first panel.
const TOP: u32 = 86;

/// One color per system; spool's stands out.
const COLORS: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x94, 0x67, 0xbd),
];

const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);
const LIGHT_GREY: RGBColor = RGBColor(0x77, 0x77, 0x77);
const RED: RGBColor = RGBColor(0xaa, 0x00, 0x00);
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
const FONT: &str = "DejaVu Sans, Arial, sans-serif";

/// The chart of `rows` as an SVG document.
pub fn svg(rows: &[Row], mode: &str, machine: &Machine) -> Result<String, String> {
    let panel_height = PANEL_TOP + SYSTEMS.len() as u32 * BAR + PANEL_BOTTOM;
    let height = TOP + rows.len() as u32 * panel_height + 10;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        draw(&root, rows, mode, machine, panel_height).map_err(|e| format!("chart: {e}"))?;
        root.present().map_err(|e| format!("chart: {e}"))?;
    }
    Ok(out)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult<'a> =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'a> as DrawingBackend>::ErrorType>>;

/// A font of `size` px. plotters writes 1/1.24 of a font's size into the
/// SVG (its fonts are sized by line height); this undoes that so the sizes
/// here are the SVG's.
fn font(size: f64) -> FontDesc<'static> {
    (FONT, size * 1.24).into_font()
}

fn text(size: f64, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from(font(size)).color(color)
}

fn draw<'a>(
    root: &Area<'a>,
    rows: &[Row],
    mode: &str,
    machine: &Machine,
    panel_height: u32,
) -> DrawResult<'a> {
    root.fill(&WHITE)?;
    let title = font(16.0).style(FontStyle::Bold);
    root.draw_text(
        "spool vs peers — lower is better except rates (/s) (median bar, min–max whisker, log scale)",
        &TextStyle::from(title),
        (10, 8),
    )?;
    let grey = text(12.0, &GREY);
    let lines = [
        format!("{mode} run; {}", machine.hardware()),
        machine.toolchains(),
        format!("load average (1, 5, 15 min) {}", machine.load),
    ];
    for (i, line) in lines.iter().enumerate() {
        root.draw_text(line, &grey, (10, 28 + 16 * i as i32))?;
    }
    let (_, body) = root.split_vertically(TOP);
    let panels = body.split_evenly((rows.len().max(1), 1));
    for (row, panel) in rows.iter().zip(&panels) {
        debug_assert_eq!(panel.dim_in_pixel().1, panel_height);
        draw_panel(panel, row)?;
    }
    Ok(())
}

fn draw_panel<'a>(panel: &Area<'a>, row: &Row) -> DrawResult<'a> {
    let bold = |size: f64| TextStyle::from(font(size).style(FontStyle::Bold));
    let title = if row.higher_is_better() {
        format!("{} (higher is better)", row.label())
    } else {
        row.label()
    };
    panel.draw_text(&title, &bold(13.0), (10, 8))?;
    if let Some(note) = &row.note {
        panel.draw_text(note, &text(11.0, &GREY), (10, 24))?;
    }
    if let Some((ratio, best)) = row.ratio() {
        panel.draw_text(
            &format!("spool / best peer ({best}): {ratio:.2}x"),
            &bold(12.0),
            ((WIDTH - RIGHT + 8) as i32, 8),
        )?;
    }

    // The log axis spans the decades of every sample's min and max.
    let values: Vec<f64> = row
        .cells
        .iter()
        .filter_map(Cell::stats)
        .flat_map(|(_, lo, hi)| [lo, hi])
        .filter(|v| *v > 0.0)
        .collect();
    let (_, body) = panel.split_vertically(PANEL_TOP);
    let (plot, labels) = body.split_horizontally(WIDTH - RIGHT);
    let n = SYSTEMS.len();
    // A system's bar: `i` counts from the top (spool first).
    let y = |i: usize, at: f64| (n - i) as f64 - at;
    if values.is_empty() {
        // No figures: only the reasons, one line per system.
        for (i, cell) in row.cells.iter().enumerate() {
            let py = (i as u32 * BAR + BAR / 2) as i32;
            draw_name(&plot, i, py)?;
            if let Some(why) = reason(cell) {
                plot.draw_text(&why.0, &why.1, (LEFT as i32 + 4, py))?;
            }
        }
        return Ok(());
    }
    let lo = 10f64.powf(
        values
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .log10()
            .floor(),
    );
    let hi = 10f64.powf(
        values
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
            .log10()
            .ceil(),
    );
    let hi = if hi <= lo { lo * 10.0 } else { hi };
    let mut chart = ChartBuilder::on(&plot)
        .y_label_area_size(LEFT)
        .x_label_area_size(PANEL_BOTTOM)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .y_labels(0)
        .x_labels(8)
        .x_label_formatter(&|v| fmt(*v))
        .x_label_style(text(12.0, &GREY))
        .max_light_lines(0)
        .bold_line_style(GRID)
        .axis_style(GRID)
        .draw()?;
    for (i, cell) in row.cells.iter().enumerate() {
        let (_, py) = chart.backend_coord(&(lo, y(i, 0.5)));
        // Back to the panel's own pixels: the labels are drawn on areas.
        let py = py - plot.get_base_pixel().1;
        draw_name(&plot, i, py)?;
        match cell.stats() {
            Some((median, min, max)) => {
                chart.draw_series([Rectangle::new(
                    [(lo, y(i, 0.125)), (median.max(lo), y(i, 0.875))],
                    COLORS[i].filled(),
                )])?;
                chart.draw_series([PathElement::new(
                    [(min.max(lo), y(i, 0.5)), (max.max(lo), y(i, 0.5))],
                    BLACK.stroke_width(2),
                )])?;
                labels.draw_text(
                    &format!("{} {}", fmt(median), row.unit),
                    &text(12.0, &BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
                    (8, py),
                )?;
            }
            None => {
                if let Some((why, style)) = reason(cell) {
                    plot.draw_text(&why, &style, (LEFT as i32 + 4, py))?;
                }
            }
        }
    }
    Ok(())
}

/// The system's name, left of its bar, at `py` in the plot's pixels.
fn draw_name<'a>(plot: &Area<'a>, i: usize, py: i32) -> DrawResult<'a> {
    let name = if i == 0 {
        font(12.0).style(FontStyle::Bold)
    } else {
        font(12.0)
    };
    plot.draw_text(
        SYSTEMS[i],
        &TextStyle::from(name).pos(Pos::new(HPos::Right, VPos::Center)),
        (LEFT as i32 - 6, py),
    )
}

/// Why a cell has no bar, as the chart writes it (cut to one line), and its
/// style; `None` for a cell with figures or no samples.
fn reason(cell: &Cell) -> Option<(String, TextStyle<'static>)> {
    let (kind, why, color) = match cell {
        Cell::Failed(why) => ("failed", why, &RED),
        Cell::Skipped(why) => ("skipped", why, &RED),
        Cell::NotApplicable(why) => ("n/a", why, &LIGHT_GREY),
        Cell::Values(_) => return None,
    };
    let mut line: String = why.chars().take(95).collect();
    if line.len() < why.len() {
        line.push('…');
    }
    let style = TextStyle::from(font(12.0).style(FontStyle::Italic))
        .color(color)
        .pos(Pos::new(HPos::Left, VPos::Center));
    Some((format!("{kind}: {line}"), style))
}
