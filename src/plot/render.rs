//! Layout and drawing of a plot: title, annotation strip, one panel per signal, the
//! shared time axis. Everything is drawn through [`Canvas`], so the PNG and the SVG
//! hold the same picture.

use super::canvas::{Anchor, Canvas, Measure, Pen, PngCanvas, Rgba, SvgCanvas};
use super::data::{Mark, PlotSource};
use super::decimate::Decimator;
use super::{Grid, ImageFormat, PlotError, PlotOptions, PlotReport, SignalReport};

const LEFT: f32 = 72.0;
const RIGHT: f32 = 16.0;
const TITLE_H: f32 = 30.0;
const STRIP_H: f32 = 38.0;
const GAP: f32 = 8.0;
const AXIS_H: f32 = 46.0;
/// Largest image side accepted (a 12-lead ECG on square paper is ~1,800 px tall).
const MAX_SIDE: u32 = 16_384;

const INK: Rgba = Rgba::rgb(30, 30, 30);
const MUTED: Rgba = Rgba::rgb(110, 110, 110);
const FRAME: Rgba = Rgba::rgb(170, 170, 170);
const PLAIN_GRID: Rgba = Rgba::rgb(228, 228, 228);
const ECG_MINOR: Rgba = Rgba::rgb(250, 214, 214);
const ECG_MAJOR: Rgba = Rgba::rgb(236, 150, 150);
const ECG_PAPER: Rgba = Rgba::rgb(255, 251, 250);
const TRACE: Rgba = Rgba::rgb(22, 52, 140);
const TRACE_ECG: Rgba = Rgba::rgb(10, 10, 10);
const MARK_LINE: Rgba = Rgba(200, 90, 20, 110);
const MARK_TEXT: Rgba = Rgba::rgb(190, 80, 10);
const AUX_TEXT: Rgba = Rgba::rgb(20, 120, 60);

/// One panel's vertical geometry and scale.
struct Panel {
    top: f32,
    height: f32,
    /// Value at the panel's top and bottom edges.
    hi: f64,
    lo: f64,
    /// Whether ECG paper is drawn (mV signal with `--grid ecg`).
    ecg: bool,
}

impl Panel {
    fn y(&self, v: f64) -> f32 {
        let f = (self.hi - v) / (self.hi - self.lo);
        (self.top as f64 + f * self.height as f64)
            .clamp(self.top as f64, (self.top + self.height) as f64) as f32
    }
}

/// The time axis: seconds from the record start, or clock time from its base time.
struct TimeAxis {
    t0: f64,
    t1: f64,
    left: f32,
    width: f32,
    /// Seconds since midnight of the record's first frame, when the header has one.
    clock: Option<f64>,
}

impl TimeAxis {
    fn x(&self, t: f64) -> f32 {
        self.left + ((t - self.t0) / (self.t1 - self.t0) * self.width as f64) as f32
    }

    /// Tick times (record seconds) and their labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        let target = (self.width / 110.0).max(2.0) as f64;
        let span = self.t1 - self.t0;
        let offset = self.clock.unwrap_or(0.0);
        let step = match self.clock {
            Some(_) => clock_step(span / target),
            None => nice_step(span / target),
        };
        let first = ((self.t0 + offset) / step).ceil() as i64;
        let last = ((self.t1 + offset) / step).floor() as i64;
        (first..=last)
            .map(|i| {
                let abs = i as f64 * step;
                let label = match self.clock {
                    Some(_) => clock_label(abs, step),
                    None => seconds_label(abs, step),
                };
                (abs - offset, label)
            })
            .collect()
    }
}

/// A 1-2-5 step near `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// A step a clock face uses (1-2-5 below a second, then 1, 2, 5, 10, 15, 30 s, ...).
fn clock_step(raw: f64) -> f64 {
    const STEPS: [f64; 17] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0, 43200.0,
    ];
    if raw < 1.0 {
        return nice_step(raw);
    }
    STEPS.into_iter().find(|&s| s >= raw).unwrap_or(86400.0)
}

fn decimals(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    }
}

fn seconds_label(t: f64, step: f64) -> String {
    format!("{:.*}", decimals(step), t)
}

fn clock_label(abs: f64, step: f64) -> String {
    let day = abs.rem_euclid(86400.0);
    let whole = day.floor() as u64;
    let (h, m, s) = (whole / 3600, whole / 60 % 60, whole % 60);
    if step >= 60.0 {
        format!("{h:02}:{m:02}")
    } else if step >= 1.0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        let d = decimals(step);
        let frac = format!("{:.*}", d, day - whole as f64);
        format!("{h:02}:{m:02}:{s:02}{}", frac.trim_start_matches('0'))
    }
}

/// `HH:MM:SS[.ffffff]` as seconds since midnight.
fn parse_clock(s: &str) -> Option<f64> {
    let mut parts = s.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + sec)
}

fn format_value(v: f64, step: f64) -> String {
    let s = format!("{:.*}", decimals(step), v);
    if s.starts_with("-") && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

fn is_mv(units: &str) -> bool {
    units.eq_ignore_ascii_case("mv")
}

/// Draws the plot of `opts` from `source`; returns the encoded image and the report
/// (its `out` is filled in by the caller).
pub fn draw(
    source: &mut PlotSource,
    opts: &PlotOptions,
    format: ImageFormat,
) -> Result<(Vec<u8>, PlotReport), PlotError> {
    let meta = source.meta.clone();
    if !(meta.fs.is_finite() && meta.fs > 0.0) {
        return Err(PlotError::Usage(format!(
            "record {}: sampling frequency {} cannot be plotted",
            meta.name, meta.fs
        )));
    }
    // Signals, in the order asked for.
    let selected: Vec<usize> = if opts.signals.is_empty() {
        (0..meta.channels.len()).collect()
    } else {
        opts.signals
            .iter()
            .map(|want| {
                meta.channels
                    .iter()
                    .position(|c| &c.name == want)
                    .ok_or_else(|| {
                        PlotError::Usage(format!(
                            "record {} has no signal {want:?} (it has: {})",
                            meta.name,
                            meta.channels
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })
            })
            .collect::<Result<_, _>>()?
    };
    if selected.is_empty() {
        return Err(PlotError::Usage(format!(
            "record {} has no signals",
            meta.name
        )));
    }

    // The window in frames, then back in seconds (the axis spans whole frames).
    let from = opts.from.unwrap_or(0.0);
    let start = (from * meta.fs).floor() as u64;
    let end = match opts.to {
        Some(to) => ((to * meta.fs).ceil() as u64).min(meta.n_frames),
        None => meta.n_frames,
    };
    if start >= end {
        return Err(PlotError::Usage(format!(
            "record {} ({} frames, {:.3} s): the window {:.3} s to {} is empty",
            meta.name,
            meta.n_frames,
            meta.n_frames as f64 / meta.fs,
            from,
            opts.to
                .map_or("the end".to_string(), |t| format!("{t:.3} s"))
        )));
    }
    let (t0, t1) = (start as f64 / meta.fs, end as f64 / meta.fs);

    let width = opts.width.clamp(300, MAX_SIDE);
    let plot_w = width as f32 - LEFT - RIGHT;
    let columns = plot_w.round().max(1.0) as usize;
    let mut traces: Vec<Decimator> = selected
        .iter()
        .map(|&j| {
            let spf = u64::from(meta.channels[j].samps_per_frame.max(1));
            Decimator::new(meta.fs * spf as f64, t0, t1, columns, (end - start) * spf)
        })
        .collect();
    source.feed(start..end, &selected, &mut traces)?;

    let marks = match &opts.annotations {
        Some(ext) => source.annotations(ext, start..end)?.ok_or_else(|| {
            PlotError::Usage(format!(
                "record {} has no annotation file with extension {ext:?}",
                meta.name
            ))
        })?,
        None => Vec::new(),
    };

    let axis = TimeAxis {
        t0,
        t1,
        left: LEFT,
        width: plot_w,
        clock: meta.base_time.as_deref().and_then(parse_clock),
    };

    // Vertical layout.
    let px_per_sec = plot_w as f64 / (t1 - t0);
    let mut y = TITLE_H;
    let strip_top = y;
    if opts.annotations.is_some() {
        y += STRIP_H;
    }
    let mut panels = Vec::with_capacity(selected.len());
    for (t, &j) in traces.iter().zip(&selected) {
        let ecg = opts.grid == Grid::Ecg && is_mv(&meta.channels[j].units);
        let (lo, hi) = t.range().map_or((-1.0, 1.0), |(a, b)| (a as f64, b as f64));
        let (lo, hi, height) = if ecg {
            // Whole 0.5 mV boxes around the trace; 10 mm/mV against 25 mm/s makes a
            // 0.5 mV box as tall as a 0.2 s box is wide.
            let lo = ((lo - 0.1) / 0.5).floor() * 0.5;
            let hi = ((hi + 0.1) / 0.5).ceil() * 0.5;
            let px_per_mv = px_per_sec * 0.4;
            let h = ((hi - lo) * px_per_mv).clamp(60.0, 900.0);
            (lo, hi, h as f32)
        } else {
            let (lo, hi) = if hi > lo {
                let pad = (hi - lo) * 0.08;
                (lo - pad, hi + pad)
            } else {
                let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
                (lo - pad, hi + pad)
            };
            (lo, hi, opts.panel_height.clamp(30, 2000) as f32)
        };
        panels.push(Panel {
            top: y,
            height,
            hi,
            lo,
            ecg,
        });
        y += height + GAP;
    }
    let plot_bottom = y - GAP;
    let height_f = plot_bottom + AXIS_H;
    if height_f > MAX_SIDE as f32 {
        return Err(PlotError::Usage(format!(
            "the plot would be {height_f:.0} px tall; draw fewer signals (--signals)"
        )));
    }
    let height = height_f.ceil() as u32;

    let measure = Measure::new()?;
    let mut report = PlotReport {
        out: Default::default(),
        width,
        height,
        frames: start..end,
        signals: Vec::new(),
        annotations: marks.len(),
        annotation_labels: 0,
    };
    let scene = Scene {
        opts,
        meta: &meta,
        selected: &selected,
        traces: &traces,
        panels: &panels,
        axis: &axis,
        marks: &marks,
        strip_top,
        plot_bottom,
        measure: &measure,
    };
    let bytes = match format {
        ImageFormat::Svg => {
            let mut c = SvgCanvas::new(width, height);
            scene.draw(&mut c, &mut report);
            c.finish().into_bytes()
        }
        ImageFormat::Png => {
            let mut c = PngCanvas::new(width, height)?;
            scene.draw(&mut c, &mut report);
            c.finish()?
        }
    };
    Ok((bytes, report))
}

/// Everything the drawing needs, laid out.
struct Scene<'a> {
    opts: &'a PlotOptions,
    meta: &'a crate::convert::RecordMeta,
    selected: &'a [usize],
    traces: &'a [Decimator],
    panels: &'a [Panel],
    axis: &'a TimeAxis,
    marks: &'a [Mark],
    strip_top: f32,
    plot_bottom: f32,
    measure: &'a Measure,
}

impl Scene<'_> {
    fn draw(&self, c: &mut dyn Canvas, report: &mut PlotReport) {
        self.title(c);
        let ticks = self.axis.ticks();
        for ((panel, trace), &j) in self.panels.iter().zip(self.traces).zip(self.selected) {
            let ch = &self.meta.channels[j];
            c.begin_group("panel", &ch.name);
            self.panel_grid(c, panel, &ticks);
            let runs = trace.runs();
            let pen = if panel.ecg {
                Pen::solid(TRACE_ECG, 1.3)
            } else {
                Pen::solid(TRACE, 1.2)
            };
            let mut points = 0;
            for run in &runs {
                let pts: Vec<(f32, f32)> = run
                    .iter()
                    .map(|&(x, v)| (self.axis.left + x, panel.y(v as f64)))
                    .collect();
                points += pts.len();
                c.polyline(&pts, pen, "signal");
            }
            self.panel_frame(c, panel, ch, trace);
            c.end_group();
            report.signals.push(SignalReport {
                name: ch.name.clone(),
                points,
                runs: runs.len(),
                decimated: trace.is_decimating(),
            });
        }
        self.time_axis(c, &ticks);
        if self.opts.annotations.is_some() {
            report.annotation_labels = self.annotations(c);
        }
    }

    fn title(&self, c: &mut dyn Canvas) {
        let m = self.meta;
        let mut title = format!(
            "{}   {} signal{}   {} Hz",
            m.name,
            self.selected.len(),
            if self.selected.len() == 1 { "" } else { "s" },
            trim_float(m.fs)
        );
        if let Some(d) = &m.base_date {
            title.push_str(&format!("   {d}"));
            if let Some(t) = &m.base_time {
                title.push_str(&format!(" {t}"));
            }
        }
        c.text(
            self.axis.left,
            20.0,
            &title,
            14.0,
            INK,
            Anchor::Start,
            "title",
        );
    }

    fn panel_grid(&self, c: &mut dyn Canvas, p: &Panel, ticks: &[(f64, String)]) {
        let (l, r) = (self.axis.left, self.axis.left + self.axis.width);
        let (top, bottom) = (p.top, p.top + p.height);
        if p.ecg {
            c.fill_rect(l, top, r - l, p.height, ECG_PAPER);
            // Minor then major lines, each class drawn only where lines are at least
            // 3 px apart (a 24-hour window would otherwise be solid pink).
            for (dt, dv, pen, class) in [
                (0.04, 0.1, Pen::solid(ECG_MINOR, 0.6), "grid-minor"),
                (0.2, 0.5, Pen::solid(ECG_MAJOR, 1.0), "grid-major"),
            ] {
                let mut segs = Vec::new();
                let px_t = dt * self.axis.width as f64 / (self.axis.t1 - self.axis.t0);
                if px_t >= 3.0 {
                    let first = (self.axis.t0 / dt).ceil() as i64;
                    let last = (self.axis.t1 / dt).floor() as i64;
                    for i in first..=last {
                        let x = self.axis.x(i as f64 * dt);
                        segs.push([x, top, x, bottom]);
                    }
                }
                let px_v = dv * p.height as f64 / (p.hi - p.lo);
                if px_v >= 3.0 {
                    let first = (p.lo / dv - 1e-9).ceil() as i64;
                    let last = (p.hi / dv + 1e-9).floor() as i64;
                    for i in first..=last {
                        let y = p.y(i as f64 * dv);
                        segs.push([l, y, r, y]);
                    }
                }
                c.segments(&segs, pen, class);
            }
        } else {
            let mut segs: Vec<[f32; 4]> = ticks
                .iter()
                .map(|(t, _)| {
                    let x = self.axis.x(*t);
                    [x, top, x, bottom]
                })
                .collect();
            for (v, _) in value_ticks(p) {
                let y = p.y(v);
                segs.push([l, y, r, y]);
            }
            c.segments(&segs, Pen::solid(PLAIN_GRID, 1.0), "grid");
        }
    }

    fn panel_frame(
        &self,
        c: &mut dyn Canvas,
        p: &Panel,
        ch: &crate::convert::source::ChannelMeta,
        trace: &Decimator,
    ) {
        let (l, r) = (self.axis.left, self.axis.left + self.axis.width);
        let (top, bottom) = (p.top, p.top + p.height);
        c.segments(
            &[
                [l, top, r, top],
                [r, top, r, bottom],
                [r, bottom, l, bottom],
                [l, bottom, l, top],
            ],
            Pen::solid(FRAME, 1.0),
            "frame",
        );
        // Value ticks on the left.
        for (v, label) in value_ticks(p) {
            let y = p.y(v);
            c.segments(&[[l - 4.0, y, l, y]], Pen::solid(FRAME, 1.0), "tick");
            // Labels on the very edge would run into the next panel's.
            if y - top >= 5.0 && bottom - y >= 5.0 {
                c.text(
                    l - 6.0,
                    y + 4.0,
                    &label,
                    10.0,
                    MUTED,
                    Anchor::End,
                    "value-label",
                );
            }
        }
        // Name, units and rate, on a light box at the top left.
        let spf = ch.samps_per_frame.max(1);
        let rate = trim_float(self.meta.fs * spf as f64);
        let mut label = format!("{} ({})  {} Hz", ch.name, ch.units, rate);
        if trace.range().is_none() {
            label.push_str("  no valid samples");
        }
        let w = self.measure.width(&label, 12.0);
        c.fill_rect(l + 1.0, top + 1.0, w + 10.0, 18.0, Rgba(255, 255, 255, 215));
        c.text(
            l + 6.0,
            top + 14.0,
            &label,
            12.0,
            INK,
            Anchor::Start,
            "signal-label",
        );
    }

    fn time_axis(&self, c: &mut dyn Canvas, ticks: &[(f64, String)]) {
        let y = self.plot_bottom;
        let mut last_end = f32::NEG_INFINITY;
        for (t, label) in ticks {
            let x = self.axis.x(*t);
            c.segments(&[[x, y, x, y + 5.0]], Pen::solid(FRAME, 1.0), "tick");
            let w = self.measure.width(label, 11.0);
            let right_edge = self.axis.left + self.axis.width + RIGHT;
            if x - w / 2.0 > last_end + 4.0 && x + w / 2.0 <= right_edge {
                c.text(
                    x,
                    y + 18.0,
                    label,
                    11.0,
                    MUTED,
                    Anchor::Middle,
                    "time-label",
                );
                last_end = x + w / 2.0;
            }
        }
        let title = match (self.axis.clock, &self.meta.base_time) {
            (Some(_), Some(bt)) => format!("clock time (record starts at {bt})"),
            _ => "time (s from the record's start)".to_string(),
        };
        let mid = self.axis.left + self.axis.width / 2.0;
        c.text(
            mid,
            y + 38.0,
            &title,
            12.0,
            INK,
            Anchor::Middle,
            "axis-title",
        );
    }

    /// Draws the annotations; returns how many got a label.
    fn annotations(&self, c: &mut dyn Canvas) -> usize {
        c.begin_group(
            "annotations",
            self.opts.annotations.as_deref().unwrap_or(""),
        );
        let top = self.strip_top;
        let fs = self.meta.fs;
        // A line through every panel at each annotation, unless they are so dense that
        // the lines would hide the signals (then only the strip's ticks show them).
        let dense = self.marks.len() as f32 > self.axis.width / 6.0;
        let mut lines = Vec::new();
        let mut ticks = Vec::new();
        let mut labels = 0;
        let mut sym_end = f32::NEG_INFINITY;
        let mut aux_end = f32::NEG_INFINITY;
        for m in self.marks {
            let x = self.axis.x(m.sample as f64 / fs);
            ticks.push([x, top + STRIP_H - 6.0, x, top + STRIP_H]);
            if !dense {
                lines.push([x, top + STRIP_H, x, self.plot_bottom]);
            }
            let w = self.measure.width(&m.symbol, 12.0);
            if x - w / 2.0 > sym_end + 2.0 {
                c.text(
                    x,
                    top + 14.0,
                    &m.symbol,
                    12.0,
                    MARK_TEXT,
                    Anchor::Middle,
                    "annotation-symbol",
                );
                sym_end = x + w / 2.0;
                labels += 1;
            }
            if !m.aux.is_empty() {
                let w = self.measure.width(&m.aux, 11.0);
                if x > aux_end + 4.0 {
                    c.text(
                        x,
                        top + 28.0,
                        &m.aux,
                        11.0,
                        AUX_TEXT,
                        Anchor::Start,
                        "annotation-aux",
                    );
                    aux_end = x + w;
                }
            }
        }
        c.segments(&ticks, Pen::solid(MARK_TEXT, 1.0), "annotation-tick");
        c.segments(
            &lines,
            Pen {
                color: MARK_LINE,
                width: 1.0,
                dash: Some(3.0),
            },
            "annotation-line",
        );
        c.end_group();
        labels
    }
}

/// About four round values across the panel (0.5 mV steps at least on ECG paper).
fn value_ticks(p: &Panel) -> Vec<(f64, String)> {
    let mut step = nice_step((p.hi - p.lo) / 4.0);
    if p.ecg {
        step = step.max(0.5);
    }
    let first = (p.lo / step).ceil() as i64;
    let last = (p.hi / step).floor() as i64;
    if last - first > 50 {
        return Vec::new();
    }
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            (v, format_value(v, step))
        })
        .collect()
}

/// `500` for 500.0, `0.5` for 0.5 (no trailing zeros).
fn trim_float(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_labels() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(clock_step(40.0), 60.0);
        assert_eq!(clock_step(4000.0), 7200.0);
        assert_eq!(clock_label(8.0 * 3600.0 + 5.0, 5.0), "08:00:05");
        assert_eq!(clock_label(25.0 * 3600.0, 3600.0), "01:00");
        assert_eq!(clock_label(3.5, 0.5), "00:00:03.5");
        assert_eq!(seconds_label(2.5, 0.5), "2.5");
        assert_eq!(format_value(-0.0001, 0.5), "0.0");
        assert_eq!(parse_clock("10:30:00.5"), Some(37800.5));
        assert_eq!(trim_float(360.0), "360");
    }

    #[test]
    fn ticks_fall_on_clock_multiples() {
        let offset = 8.0 * 3600.0 + 3.0;
        let axis = TimeAxis {
            t0: 0.0,
            t1: 60.0,
            left: 0.0,
            width: 600.0,
            clock: Some(offset),
        };
        let ticks = axis.ticks();
        assert!(ticks.len() >= 3, "{ticks:?}");
        let step = ticks[1].0 - ticks[0].0;
        for (t, label) in &ticks {
            // Whole multiples of the step in clock time, not in record time.
            assert!(((t + offset) / step).fract().abs() < 1e-9, "{t} {step}");
            assert!(label.starts_with("08:0"), "{label}");
        }
        assert_eq!(ticks[0].1, format!("08:00:{:02}", step as u32));
    }
}
