//! The sweep as a picture: speedup over the sequential run against the number
//! of workers, one line per pool, and for reference the ideal
//! `speedup = min(workers, cores)`: past one worker per core there is no more
//! hardware to spread the work over. Drawn with `plotters` into an SVG string (its SVG backend only: no
//! bitmap or font crates; the viewer renders the text).

use plotters::prelude::*;

use crate::executors::ExecutorKind;
use crate::sweep::Sweep;

/// Line colours: threads blue, processes orange, ideal grey.
const THREADS: RGBColor = RGBColor(31, 119, 180);
const PROCS: RGBColor = RGBColor(255, 127, 14);
const IDEAL: RGBColor = RGBColor(170, 170, 170);

/// Draws the speedup plot of `sweep`, measured on a machine with `cores`
/// cores, as an SVG document.
pub fn speedup_svg(sweep: &Sweep, cores: usize) -> Result<String, crate::cli::ProgramError> {
    let mut svg = String::new();
    draw(sweep, cores, &mut svg).map_err(|e| crate::cli::ProgramError::Plot(e.to_string()))?;
    Ok(svg)
}

fn draw(sweep: &Sweep, cores: usize, svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let max_workers = sweep
        .rows
        .iter()
        .map(|r| r.workers)
        .max()
        .unwrap_or(1)
        .max(1);
    let best = sweep.rows.iter().map(|r| r.speedup).fold(0.0, f64::max);
    let ideal_max = max_workers.min(cores.max(1)) as f64;
    let y_max = (best.max(ideal_max) * 1.15).ceil();

    let root = SVGBackend::with_string(svg, (720, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("AES-CTR jobs: speedup over sequential", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5f64..max_workers as f64 + 0.5, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("workers")
        .y_desc("speedup (sequential median / median)")
        .x_labels(max_workers + 1)
        .light_line_style(WHITE)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}x"))
        .draw()?;

    let ideal = (1..=max_workers).map(|w| (w as f64, w.min(cores.max(1)) as f64));
    chart
        .draw_series(LineSeries::new(ideal, IDEAL.stroke_width(1)))?
        .label(format!("ideal: min(workers, {cores} cores)"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], IDEAL.stroke_width(1)));

    for (executor, colour, label) in [
        (ExecutorKind::Threads, THREADS, "thread pool"),
        (ExecutorKind::Procs, PROCS, "process pool"),
    ] {
        let points: Vec<(f64, f64)> = sweep
            .rows_of(executor)
            .map(|r| (r.workers as f64, r.speedup))
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
