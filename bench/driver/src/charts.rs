//! The charts of chapter 14, "Benchmarks", drawn with plotters as SVG:
//! panels of horizontal bars, one bar per server, its length the median of
//! the runs and a line across it from the min to the max, so that a reader
//! sees at once whether two bars differ by more than their noise.

use std::error::Error;
use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::report::human;

/// One bar: a server's median, min and max.
pub struct Bar {
    pub label: String,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// One panel: a workload, or a percentile, with its bars.
pub struct Panel {
    pub title: String,
    pub unit: String,
    pub bars: Vec<Bar>,
}

/// Ours in blue, the peers in grey.
fn color(label: &str) -> RGBColor {
    if label.starts_with("evio-rs") {
        RGBColor(52, 101, 164)
    } else {
        RGBColor(150, 150, 150)
    }
}

// ANCHOR: draw
/// Draws `panels` (those with bars) into an SVG file at `path`, two to a row.
pub fn draw(path: &Path, title: &str, panels: &[Panel]) -> Result<(), Box<dyn Error>> {
    let panels: Vec<&Panel> = panels.iter().filter(|p| !p.bars.is_empty()).collect();
    if panels.is_empty() {
        return Ok(());
    }
    let cols = panels.len().min(2);
    let rows = panels.len().div_ceil(cols);
    let most = panels.iter().map(|p| p.bars.len()).max().unwrap_or(1);
    let panel_height = 80 + 30 * most as u32;
    let size = (cols as u32 * 520, rows as u32 * panel_height + 40);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    for (area, panel) in root.split_evenly((rows, cols)).iter().zip(panels) {
        let n = panel.bars.len();
        let top = panel.bars.iter().map(|b| b.max).fold(0.0, f64::max);
        // Room on the right for the median's label.
        let x_end = if top > 0.0 { top * 1.3 } else { 1.0 };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(35)
            .y_label_area_size(150)
            .build_cartesian_2d(0.0..x_end, (0..n).into_segmented())?;
        // The first bar on top: segment n-1 is the highest.
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < n => panel.bars[n - 1 - i].label.clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(n)
            .y_label_formatter(&label)
            .x_labels(5)
            .x_label_formatter(&|v| human(*v))
            .x_desc(panel.unit.as_str())
            .draw()?;
        let at = |i: usize| n - 1 - i;
        chart.draw_series(panel.bars.iter().enumerate().map(|(i, b)| {
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(at(i))),
                    (b.median, SegmentValue::Exact(at(i) + 1)),
                ],
                color(&b.label).filled(),
            );
            bar.set_margin(5, 5, 0, 0);
            bar
        }))?;
        // min to max, across the bar's end.
        chart.draw_series(panel.bars.iter().enumerate().map(|(i, b)| {
            PathElement::new(
                vec![
                    (b.min, SegmentValue::CenterOf(at(i))),
                    (b.max, SegmentValue::CenterOf(at(i))),
                ],
                BLACK.stroke_width(2),
            )
        }))?;
        chart.draw_series(panel.bars.iter().enumerate().map(|(i, b)| {
            Text::new(
                format!(" {}", human(b.median)),
                (b.max, SegmentValue::CenterOf(at(i))),
                ("sans-serif", 12),
            )
        }))?;
    }
    root.present()?;
    Ok(())
}
// ANCHOR_END: draw
