//! SVG plots for the page, drawn with plotters' SVG backend (no bitmap, no font files).
//!
//! Two shapes cover everything the page shows:
//!
//! * [`bar_chart`]: horizontal bars on a logarithmic axis, one per (operation, who). Python's
//!   figures are often 100x below ours, and a linear axis would flatten them to nothing. Our
//!   bars are drawn in a strong colour, peers in grey, and every bar carries its figure as text,
//!   so the plot can be read without the table.
//! * [`speedup_chart`]: speed-up against number of workers, one line per executor, with the
//!   ideal `speed-up = workers` line for reference.
//!
//! Both return the SVG as a `String`; the caller decides where to write it.

use std::fmt;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::figure::{Figure, Kind};
use crate::sweep::Sweep;

/// One bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// The label written next to the bar.
    pub label: String,
    /// Its figure (all bars of a chart share one kind).
    pub figure: Figure,
    /// True for our own implementation (drawn highlighted).
    pub ours: bool,
}

/// Plotters failed to draw (it only writes to a string, so this is rare).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlotError(pub String);

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "drawing the plot failed: {}", self.0)
    }
}

impl std::error::Error for PlotError {}

fn err<E: fmt::Debug>(e: E) -> PlotError {
    PlotError(format!("{e:?}"))
}

const OURS: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const PEER: RGBColor = RGBColor(0xa0, 0xa0, 0xa0);
const PROCESSES: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const WIDTH: u32 = 860;

/// The axis description for a kind.
fn axis_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Time => "seconds per operation (log scale, shorter is better)",
        Kind::Rate => "operations per second (log scale, longer is better)",
        Kind::Bandwidth => "bytes per second (log scale, longer is better)",
        Kind::Speedup => "speed-up (log scale)",
    }
}

/// Draws `bars` (top to bottom in the given order) as a horizontal log-scale bar chart.
/// Bars without a positive value are skipped; with no bar left, `None`.
pub fn bar_chart(title: &str, bars: &[Bar]) -> Result<Option<String>, PlotError> {
    let bars: Vec<&Bar> = bars.iter().filter(|b| b.figure.value > 0.0).collect();
    let Some(kind) = bars.first().map(|b| b.figure.kind) else {
        return Ok(None);
    };
    let (min, max) = bars.iter().fold((f64::MAX, f64::MIN), |(lo, hi), b| {
        (lo.min(b.figure.value), hi.max(b.figure.value))
    });
    // A decade of room below the smallest bar, so even the shortest bar is visible.
    let lo = 10f64.powf(min.log10().floor() - 1.0);
    let hi = 10f64.powf(max.log10().ceil());
    let n = bars.len();
    let height = 90 + 46 * n as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(8)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..n as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .y_labels(0)
            .x_desc(axis_name(kind))
            .x_label_formatter(&|v| short_number(*v))
            .draw()
            .map_err(err)?;
        // Each row: the label on top, the bar below it (labels never run off the plot).
        let row_y = |i: usize| (n - 1 - i) as f64;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let color = if b.ours { OURS } else { PEER };
                let y = row_y(i);
                Rectangle::new([(lo, y + 0.08), (b.figure.value, y + 0.5)], color.filled())
            }))
            .map_err(err)?;
        let label_style =
            TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Text::new(
                    format!("{}: {}", b.label, b.figure),
                    (lo * 1.1, row_y(i) + 0.75),
                    label_style.clone(),
                )
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(Some(svg))
}

/// Draws the crypto sweep: speed-up against workers for threads and processes, plus the
/// ideal line. `None` when the sweep has no point with a speed-up.
pub fn speedup_chart(title: &str, sweep: &Sweep) -> Result<Option<String>, PlotError> {
    let series = |pick: fn(&crate::sweep::Point) -> Option<f64>| -> Vec<(f64, f64)> {
        sweep
            .points
            .iter()
            .filter_map(|p| pick(p).map(|s| (f64::from(p.workers), s)))
            .collect()
    };
    let threads = series(|p| p.threads);
    let processes = series(|p| p.processes);
    if threads.is_empty() && processes.is_empty() {
        return Ok(None);
    }
    let max_workers = sweep.points.iter().map(|p| p.workers).max().unwrap_or(1);
    let top = threads
        .iter()
        .chain(&processes)
        .map(|&(_, s)| s)
        .fold(f64::from(max_workers), f64::max)
        * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.5f64..f64::from(max_workers) + 0.5, 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("workers")
            .y_desc("speed-up over sequential")
            .x_labels(max_workers as usize + 1)
            .x_label_formatter(&|v| {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(err)?;
        let ideal: Vec<(f64, f64)> = (1..=max_workers).map(|w| (w.into(), w.into())).collect();
        chart
            .draw_series(LineSeries::new(ideal, PEER.stroke_width(2)))
            .map_err(err)?
            .label("ideal (speed-up = workers)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], PEER.stroke_width(2)));
        for (name, points, color) in [
            ("thread pool", threads, OURS),
            ("process pool", processes, PROCESSES),
        ] {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(3)).point_size(5))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(Some(svg))
}

/// Axis tick labels: `1k`, `10M`, `100n`-style, short enough for a log axis.
fn short_number(v: f64) -> String {
    const STEPS: [(f64, &str); 8] = [
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "u"),
        (1e-9, "n"),
    ];
    for (scale, suffix) in STEPS {
        if v >= scale * 0.999 {
            let m = v / scale;
            return if m >= 10.0 || m.fract() < 1e-9 {
                format!("{m:.0}{suffix}")
            } else {
                format!("{m:.1}{suffix}")
            };
        }
    }
    format!("{v:.0e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::Point;

    fn bar(label: &str, value: f64, ours: bool) -> Bar {
        Bar {
            label: label.into(),
            figure: Figure::new(value, Kind::Rate),
            ours,
        }
    }

    #[test]
    fn a_bar_chart_is_an_svg_with_every_label() {
        let svg = bar_chart(
            "thread pool throughput",
            &[
                bar("ours", 6.1e6, true),
                bar("threadpool crate", 4.5e6, false),
                bar("python", 30e3, false),
            ],
        )
        .unwrap()
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("thread pool throughput"));
        assert!(svg.contains("ours: 6.10M/s"));
        assert!(svg.contains("python: 30.0k/s"));
        // Two colours: ours highlighted, peers grey.
        assert!(svg.contains("#1F77B4") || svg.contains("#1f77b4"));
        assert!(svg.contains("#A0A0A0") || svg.contains("#a0a0a0"));
    }

    #[test]
    fn no_positive_bar_means_no_chart() {
        assert_eq!(bar_chart("empty", &[]).unwrap(), None);
        assert_eq!(bar_chart("zero", &[bar("x", 0.0, true)]).unwrap(), None);
    }

    #[test]
    fn the_speedup_chart_has_both_series_and_the_ideal_line() {
        let sweep = Sweep {
            points: vec![
                Point {
                    workers: 1,
                    threads: Some(0.98),
                    processes: Some(0.95),
                },
                Point {
                    workers: 2,
                    threads: Some(1.9),
                    processes: None,
                },
            ],
        };
        let svg = speedup_chart("crypto", &sweep).unwrap().unwrap();
        assert!(svg.contains("thread pool"));
        assert!(svg.contains("process pool"));
        assert!(svg.contains("ideal"));
        assert_eq!(speedup_chart("none", &Sweep::default()).unwrap(), None);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(short_number(1e6), "1M");
        assert_eq!(short_number(100e3), "100k");
        assert_eq!(short_number(2.5e9), "2.5G");
        assert_eq!(short_number(1e-6), "1u");
    }
}
