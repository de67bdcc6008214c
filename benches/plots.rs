//! SVG plots of the scenario runs: per scenario (per model cell in
//! `models`), goodput (2xx answers) in one panel and refusals (429s, and
//! 503s where the server answers them) in another, each a line per variant
//! over 250 ms buckets, with the allowed rate as a dashed reference where
//! it is known and the span the table counts shaded. Written with
//! `plotters`' SVG backend, whose text is `<text>` elements: no font files
//! are read.
//!
//! The files go to `benches/plots/` (the models' to `benches/plots/models/`)
//! under stable names, overwritten by each run that plots them.

use std::path::PathBuf;

use plotters::prelude::*;

/// The width of a bucket, in seconds.
pub const BUCKET: f64 = 0.25;

/// Answers of one run counted per `BUCKET`.
#[derive(Debug, Clone, Default)]
pub struct Series {
    ok: Vec<u32>,
    refused: Vec<u32>,
}

impl Series {
    /// Counts one answer `at` seconds into the run: 2xx as goodput, 429 and
    /// 503 as refused, anything else (errors, other statuses) not at all.
    pub fn add(&mut self, at: f64, status: u16) {
        let refused = matches!(status, 429 | 503);
        if !(200..=299).contains(&status) && !refused {
            return;
        }
        let i = (at.max(0.0) / BUCKET) as usize;
        if self.ok.len() <= i {
            self.ok.resize(i + 1, 0);
            self.refused.resize(i + 1, 0);
        }
        if refused {
            self.refused[i] += 1;
        } else {
            self.ok[i] += 1;
        }
    }

    /// How many seconds it covers.
    fn secs(&self) -> f64 {
        self.ok.len() as f64 * BUCKET
    }

    /// `(bucket start, count per second)`, the last bucket included.
    fn per_second(counts: &[u32]) -> Vec<(f64, f64)> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &n)| (i as f64 * BUCKET, f64::from(n) / BUCKET))
            .collect()
    }
}

/// One plot: what the panels show and the runs to draw.
pub struct Plot<'a> {
    /// The title, e.g. the table's scenario name.
    pub title: String,
    /// Where and how the answers were counted, shown under the title.
    pub counted_at: &'a str,
    /// The y description of the goodput panel.
    pub goodput: &'a str,
    /// The y description of the refusals panel.
    pub refused: &'a str,
    /// A reference line of the goodput panel (e.g. the allowed rate) and
    /// its legend entry: `(second, per second)` points.
    pub reference: Option<(String, Vec<(f64, f64)>)>,
    /// The seconds the table's figures count, shaded.
    pub counted: Option<(f64, f64)>,
    /// `(variant name, its answers)`.
    pub runs: &'a [(String, Series)],
}

/// Where the plots go.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/plots")
}

/// A file-name stem from a name as the tables print it: lower case ASCII
/// letters and digits, `/` dropped, any other run of characters one `-`
/// (`gcra 500/s b50 RA 1` → `gcra-500s-b50-ra-1`).
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if c != '/' && !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// One colour per variant, the same in every plot.
fn colour(variant: &str) -> RGBColor {
    match variant {
        "none" => RGBColor(90, 90, 90),
        v if v.starts_with("fixed") => RGBColor(140, 86, 75),
        "wait" => RGBColor(230, 120, 0),
        "autoscale" => RGBColor(148, 60, 180),
        "adaptive" => RGBColor(31, 100, 200),
        "default" => RGBColor(30, 150, 60),
        _ => RGBColor(200, 30, 30),
    }
}

const REFERENCE: RGBColor = RGBColor(200, 30, 30);
const SHADE: RGBColor = RGBColor(120, 120, 120);
const FONT: &str = "sans-serif";

/// Writes `plot` to `benches/plots/{file}.svg` (`file` may hold a
/// subdirectory) and says so on stderr; a failure is reported there, leaves
/// the previous file as it was and does not stop the bench.
pub fn write(file: &str, plot: &Plot) {
    let path = dir().join(format!("{file}.svg"));
    let written = (|| -> Result<(), Failure> {
        let mut svg = String::new();
        draw(&mut svg, plot)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Whole or not at all: into a neighbour, then renamed over it.
        let part = path.with_extension("svg.part");
        std::fs::write(&part, svg).inspect_err(|_| {
            let _ = std::fs::remove_file(&part);
        })?;
        std::fs::rename(&part, &path)?;
        Ok(())
    })();
    match written {
        Ok(()) => eprintln!("plot: {}", path.display()),
        Err(e) => eprintln!("plot {}: {e}", path.display()),
    }
}

type Failure = Box<dyn std::error::Error>;

fn draw(svg: &mut String, plot: &Plot) -> Result<(), Failure> {
    let root = SVGBackend::with_string(svg, (1000, 680)).into_drawing_area();
    root.fill(&WHITE)?;
    let (head, body) = root.split_vertically(56);
    head.draw(&Text::new(plot.title.clone(), (16, 8), (FONT, 20).into_font()))?;
    head.draw(&Text::new(
        format!(
            "per {:.0} ms bucket, as a rate; {}",
            BUCKET * 1e3,
            plot.counted_at
        ),
        (16, 34),
        (FONT, 13).into_font().color(&RGBColor(80, 80, 80)),
    ))?;
    let (panels, legend) = body.split_horizontally(830);
    let (top, bottom) = panels.split_vertically(312);

    let x_max = plot
        .runs
        .iter()
        .map(|(_, s)| s.secs())
        .chain(plot.counted.map(|(_, to)| to))
        .fold(1.0, f64::max);
    let peak = |pick: fn(&Series) -> &[u32]| {
        plot.runs
            .iter()
            .flat_map(|(_, s)| pick(s).iter())
            .map(|&n| f64::from(n) / BUCKET)
            .fold(0.0, f64::max)
    };
    let reference_max = plot
        .reference
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    // At least 10 a second, so that the whole-number labels of an empty
    // panel still differ.
    let ok_max = (peak(|s| &s.ok).max(reference_max) * 1.1).max(10.0);
    let refused_max = (peak(|s| &s.refused) * 1.1).max(10.0);

    panel(&top, plot, plot.goodput, x_max, ok_max, |s| &s.ok, true)?;
    panel(
        &bottom,
        plot,
        plot.refused,
        x_max,
        refused_max,
        |s| &s.refused,
        false,
    )?;

    // The legend, beside the panels so it hides no data.
    let mut y = 40;
    for (name, _) in plot.runs {
        let c = colour(name);
        legend.draw(&PathElement::new(vec![(8, y), (40, y)], c.stroke_width(3)))?;
        legend.draw(&Text::new(name.clone(), (48, y - 8), (FONT, 15).into_font()))?;
        y += 26;
    }
    if let Some((label, _)) = &plot.reference {
        y += 6;
        legend.draw(&plotters::element::DashedPathElement::new(
            vec![(8, y), (40, y)],
            6,
            4,
            REFERENCE.stroke_width(2),
        ))?;
        let lines = wrap(label, 18);
        for (i, line) in lines.iter().enumerate() {
            legend.draw(&Text::new(
                line.clone(),
                (48, y - 8 + 16 * i as i32),
                (FONT, 13).into_font(),
            ))?;
        }
        y += 10 + 16 * lines.len() as i32;
    }
    if plot.counted.is_some() {
        y += 6;
        legend.draw(&Rectangle::new(
            [(8, y - 7), (40, y + 7)],
            SHADE.mix(0.15).filled(),
        ))?;
        for (i, line) in ["counted by", "the table"].iter().enumerate() {
            legend.draw(&Text::new(
                line.to_string(),
                (48, y - 8 + 16 * i as i32),
                (FONT, 13).into_font(),
            ))?;
        }
    }
    root.present()?;
    Ok(())
}

/// One panel: a line per run of `pick`'s counts, the reference if
/// `with_reference`, the counted span shaded.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    plot: &Plot,
    y_desc: &str,
    x_max: f64,
    y_max: f64,
    pick: fn(&Series) -> &[u32],
    with_reference: bool,
) -> Result<(), Failure>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .margin_left(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the run")
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(RGBColor(244, 244, 244))
        .draw()?;
    if let Some((from, to)) = plot.counted {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(from, 0.0), (to.min(x_max), y_max)],
            SHADE.mix(0.15).filled(),
        )))?;
    }
    if with_reference {
        if let Some((_, pts)) = &plot.reference {
            chart.draw_series(DashedLineSeries::new(
                pts.iter().map(|&(x, y)| (x.min(x_max), y)),
                6,
                4,
                REFERENCE.stroke_width(2),
            ))?;
        }
    }
    for (name, series) in plot.runs {
        chart.draw_series(LineSeries::new(
            Series::per_second(pick(series)),
            colour(name).stroke_width(2),
        ))?;
    }
    Ok(())
}

/// Splits `text` into lines of at most about `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}
