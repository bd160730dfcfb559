//! `physio plot`: parses the arguments into [`PlotOptions`], draws, and prints a
//! one-line summary (or `--json`).

use std::io::Write;

use crate::cli::args::{GlobalArgs, GridArg, PlotArgs};
use crate::error::EXIT_OK;
use crate::plot::{self, Grid, PlotInput, PlotOptions};

/// Runs `physio plot`.
pub fn run(args: &PlotArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let input =
        PlotInput::from_path(&args.input, args.record.as_deref()).map_err(crate::Error::from)?;
    let mut opts = PlotOptions::new(input, &args.out);
    opts.from = args.from;
    opts.to = args.to;
    opts.signals = args.signals.clone();
    opts.annotations = args.annotations.clone();
    opts.grid = match args.grid {
        Some(GridArg::Ecg) => Grid::Ecg,
        None => Grid::Plain,
    };
    opts.width = args.width;
    opts.panel_height = args.panel_height;
    let started = std::time::Instant::now();
    let report = plot::plot(&opts).map_err(crate::Error::from)?;
    let secs = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "out": report.out.display().to_string(),
            "width": report.width,
            "height": report.height,
            "frames": [report.frames.start, report.frames.end],
            "signals": report.signals.iter().map(|s| serde_json::json!({
                "name": s.name, "points": s.points, "runs": s.runs, "decimated": s.decimated,
            })).collect::<Vec<_>>(),
            "annotations": report.annotations,
            "annotation_labels": report.annotation_labels,
            "seconds": secs,
        });
        serde_json::to_writer(&mut out, &value)?;
        writeln!(out)?;
    } else if !global.quiet {
        writeln!(
            out,
            "{}: {}x{} px, {} signal(s), frames {}..{}, {} annotation(s), {:.3} s",
            report.out.display(),
            report.width,
            report.height,
            report.signals.len(),
            report.frames.start,
            report.frames.end,
            report.annotations,
            secs
        )?;
    }
    Ok(EXIT_OK)
}
