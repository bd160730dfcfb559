//! The two drawing surfaces of `physio plot`: SVG (text, written element by element) and
//! PNG (rasterised with `tiny-skia`, text drawn with `ab_glyph` from the embedded DejaVu
//! Sans). The renderer draws through [`Canvas`] only, so both outputs hold the same
//! picture, and text is measured with the same font for both.

use std::fmt::Write as _;

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _};

use super::PlotError;

/// DejaVu Sans (Bitstream Vera licence, DejaVu changes public domain; see
/// `assets/fonts/LICENSE-DejaVu.txt`), embedded so no system font is needed.
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The embedded font, parsed once.
pub(crate) fn font() -> Result<FontRef<'static>, PlotError> {
    FontRef::try_from_slice(FONT_BYTES)
        .map_err(|e| PlotError::Render(format!("embedded font: {e}")))
}

/// An sRGB colour with alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgba(pub u8, pub u8, pub u8, pub u8);

impl Rgba {
    /// An opaque colour.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Rgba(r, g, b, 255)
    }

    fn svg(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    fn svg_opacity(self) -> String {
        if self.3 == 255 {
            String::new()
        } else {
            format!(
                " stroke-opacity=\"{:.3}\" fill-opacity=\"{:.3}\"",
                self.3 as f32 / 255.0,
                self.3 as f32 / 255.0
            )
        }
    }
}

/// Horizontal anchoring of a text run at its x coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// x is the left edge.
    Start,
    /// x is the centre.
    Middle,
    /// x is the right edge.
    End,
}

/// A line style.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pen {
    /// Colour.
    pub color: Rgba,
    /// Width in pixels.
    pub width: f32,
    /// Dash length (on and off), if dashed.
    pub dash: Option<f32>,
}

impl Pen {
    /// A solid pen.
    pub const fn solid(color: Rgba, width: f32) -> Self {
        Pen {
            color,
            width,
            dash: None,
        }
    }
}

/// What the renderer draws on. Coordinates are pixels, y down.
pub trait Canvas {
    /// A filled rectangle.
    fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgba);
    /// Many separate straight segments in one pen (grid lines), drawn as one path.
    fn segments(&mut self, segs: &[[f32; 4]], pen: Pen, class: &str);
    /// One connected line through `points`.
    fn polyline(&mut self, points: &[(f32, f32)], pen: Pen, class: &str);
    /// A text run with its baseline at `y`.
    // Position, text, size, colour, anchor and class are each needed by both outputs; a
    // style struct would only move the same list elsewhere.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        x: f32,
        y: f32,
        s: &str,
        size: f32,
        color: Rgba,
        anchor: Anchor,
        class: &str,
    );
    /// Opens a group (an SVG `<g>`) that the following elements belong to.
    fn begin_group(&mut self, class: &str, title: &str);
    /// Closes the group opened last.
    fn end_group(&mut self);
}

/// Text measurement with the embedded font (the same for both outputs).
#[derive(Debug, Clone)]
pub struct Measure {
    font: FontRef<'static>,
}

impl Measure {
    /// A measurer over the embedded font.
    pub fn new() -> Result<Self, PlotError> {
        Ok(Measure { font: font()? })
    }

    /// Advance width of `s` at `size` pixels.
    pub fn width(&self, s: &str, size: f32) -> f32 {
        let scaled = self.font.as_scaled(PxScale::from(size));
        let mut w = 0.0;
        let mut prev = None;
        for ch in s.chars() {
            let id = self.font.glyph_id(ch);
            if let Some(p) = prev {
                w += scaled.kern(p, id);
            }
            w += scaled.h_advance(id);
            prev = Some(id);
        }
        w
    }
}

/// Escapes text for XML content and attribute values.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An SVG document being built. Elements carry a `class` naming what they show
/// (`signal`, `annotation`, `grid-major`, ...) so tests and stylesheets can find them.
#[derive(Debug)]
pub struct SvgCanvas {
    out: String,
}

impl SvgCanvas {
    /// A `width` x `height` document on a white background.
    pub fn new(width: u32, height: u32) -> Self {
        let mut out = String::new();
        let _ = write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
             width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
             font-family=\"DejaVu Sans, Verdana, sans-serif\">\n"
        );
        let _ = writeln!(
            out,
            "<rect class=\"background\" x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>"
        );
        SvgCanvas { out }
    }

    /// The finished document.
    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

fn dash_attr(pen: Pen) -> String {
    match pen.dash {
        Some(d) => format!(" stroke-dasharray=\"{d:.1} {d:.1}\""),
        None => String::new(),
    }
}

impl Canvas for SvgCanvas {
    fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgba) {
        let _ = writeln!(
            self.out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{}\"{}/>",
            color.svg(),
            color.svg_opacity()
        );
    }

    fn segments(&mut self, segs: &[[f32; 4]], pen: Pen, class: &str) {
        if segs.is_empty() {
            return;
        }
        let mut d = String::with_capacity(segs.len() * 24);
        for s in segs {
            let _ = write!(d, "M{:.1} {:.1}L{:.1} {:.1}", s[0], s[1], s[2], s[3]);
        }
        let _ = writeln!(
            self.out,
            "<path class=\"{class}\" d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{}{}/>",
            pen.color.svg(),
            pen.width,
            pen.color.svg_opacity(),
            dash_attr(pen)
        );
    }

    fn polyline(&mut self, points: &[(f32, f32)], pen: Pen, class: &str) {
        if points.is_empty() {
            return;
        }
        let mut p = String::with_capacity(points.len() * 12);
        for (i, (x, y)) in points.iter().enumerate() {
            if i > 0 {
                p.push(' ');
            }
            let _ = write!(p, "{x:.2},{y:.2}");
        }
        let _ = writeln!(
            self.out,
            "<polyline class=\"{class}\" points=\"{p}\" fill=\"none\" stroke=\"{}\" \
             stroke-width=\"{}\" stroke-linejoin=\"round\"{}{}/>",
            pen.color.svg(),
            pen.width,
            pen.color.svg_opacity(),
            dash_attr(pen)
        );
    }

    fn text(
        &mut self,
        x: f32,
        y: f32,
        s: &str,
        size: f32,
        color: Rgba,
        anchor: Anchor,
        class: &str,
    ) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let _ = writeln!(
            self.out,
            "<text class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" \
             text-anchor=\"{anchor}\" fill=\"{}\">{}</text>",
            color.svg(),
            xml_escape(s)
        );
    }

    fn begin_group(&mut self, class: &str, title: &str) {
        let _ = writeln!(
            self.out,
            "<g class=\"{class}\" data-name=\"{}\">",
            xml_escape(title)
        );
    }

    fn end_group(&mut self) {
        self.out.push_str("</g>\n");
    }
}

/// A raster image (anti-aliased lines, text from the embedded font), encoded as PNG.
pub struct PngCanvas {
    pixmap: tiny_skia::Pixmap,
    font: FontRef<'static>,
}

impl std::fmt::Debug for PngCanvas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PngCanvas")
            .field("width", &self.pixmap.width())
            .field("height", &self.pixmap.height())
            .finish()
    }
}

impl PngCanvas {
    /// A `width` x `height` image on a white background.
    pub fn new(width: u32, height: u32) -> Result<Self, PlotError> {
        let mut pixmap = tiny_skia::Pixmap::new(width, height).ok_or_else(|| {
            PlotError::Render(format!("cannot allocate a {width}x{height} image"))
        })?;
        pixmap.fill(tiny_skia::Color::WHITE);
        Ok(PngCanvas {
            pixmap,
            font: font()?,
        })
    }

    /// The image as PNG bytes.
    pub fn finish(self) -> Result<Vec<u8>, PlotError> {
        self.pixmap
            .encode_png()
            .map_err(|e| PlotError::Render(format!("encoding PNG: {e}")))
    }

    fn paint(color: Rgba) -> tiny_skia::Paint<'static> {
        let mut paint = tiny_skia::Paint::default();
        paint.set_color_rgba8(color.0, color.1, color.2, color.3);
        paint.anti_alias = true;
        paint
    }

    fn stroke(pen: Pen) -> tiny_skia::Stroke {
        let mut stroke = tiny_skia::Stroke {
            width: pen.width,
            line_join: tiny_skia::LineJoin::Round,
            ..Default::default()
        };
        if let Some(d) = pen.dash {
            stroke.dash = tiny_skia::StrokeDash::new(vec![d, d], 0.0);
        }
        stroke
    }

    fn stroke_path(&mut self, pb: tiny_skia::PathBuilder, pen: Pen) {
        if let Some(path) = pb.finish() {
            self.pixmap.stroke_path(
                &path,
                &Self::paint(pen.color),
                &Self::stroke(pen),
                tiny_skia::Transform::identity(),
                None,
            );
        }
    }

    /// Blends `color` at `coverage` into pixel (x, y) (the background is opaque, so
    /// premultiplied and straight alpha agree).
    fn blend(&mut self, x: i32, y: i32, color: Rgba, coverage: f32) {
        let (w, h) = (self.pixmap.width() as i32, self.pixmap.height() as i32);
        if x < 0 || y < 0 || x >= w || y >= h {
            return;
        }
        let a = (coverage.clamp(0.0, 1.0) * color.3 as f32 / 255.0).clamp(0.0, 1.0);
        let i = ((y * w + x) * 4) as usize;
        let data = self.pixmap.data_mut();
        for (k, c) in [color.0, color.1, color.2].into_iter().enumerate() {
            let d = data[i + k] as f32;
            data[i + k] = (c as f32 * a + d * (1.0 - a)).round() as u8;
        }
        data[i + 3] = 255;
    }
}

impl Canvas for PngCanvas {
    fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgba) {
        if let Some(rect) = tiny_skia::Rect::from_xywh(x, y, w, h) {
            self.pixmap.fill_rect(
                rect,
                &Self::paint(color),
                tiny_skia::Transform::identity(),
                None,
            );
        }
    }

    fn segments(&mut self, segs: &[[f32; 4]], pen: Pen, _class: &str) {
        let mut pb = tiny_skia::PathBuilder::new();
        for s in segs {
            pb.move_to(s[0], s[1]);
            pb.line_to(s[2], s[3]);
        }
        self.stroke_path(pb, pen);
    }

    fn polyline(&mut self, points: &[(f32, f32)], pen: Pen, _class: &str) {
        let mut pb = tiny_skia::PathBuilder::new();
        let mut it = points.iter();
        let Some(&(x0, y0)) = it.next() else { return };
        pb.move_to(x0, y0);
        if points.len() == 1 {
            // A lone valid sample between gaps: a dot as wide as the pen.
            pb.line_to(x0 + 0.5, y0);
        }
        for &(x, y) in it {
            pb.line_to(x, y);
        }
        self.stroke_path(pb, pen);
    }

    fn text(
        &mut self,
        x: f32,
        y: f32,
        s: &str,
        size: f32,
        color: Rgba,
        anchor: Anchor,
        _class: &str,
    ) {
        let scale = PxScale::from(size);
        let scaled = self.font.as_scaled(scale);
        let mut width = 0.0;
        let mut prev = None;
        let mut glyphs = Vec::with_capacity(s.len());
        for ch in s.chars() {
            let id = self.font.glyph_id(ch);
            if let Some(p) = prev {
                width += scaled.kern(p, id);
            }
            glyphs.push((id, width));
            width += scaled.h_advance(id);
            prev = Some(id);
        }
        let x0 = match anchor {
            Anchor::Start => x,
            Anchor::Middle => x - width / 2.0,
            Anchor::End => x - width,
        };
        for (id, dx) in glyphs {
            let glyph = id.with_scale_and_position(scale, ab_glyph::point(x0 + dx, y));
            if let Some(outlined) = self.font.outline_glyph(glyph) {
                let b = outlined.px_bounds();
                let (bx, by) = (b.min.x as i32, b.min.y as i32);
                let mut cov = Vec::new();
                outlined.draw(|gx, gy, c| cov.push((bx + gx as i32, by + gy as i32, c)));
                for (px, py, c) in cov {
                    self.blend(px, py, color, c);
                }
            }
        }
    }

    fn begin_group(&mut self, _class: &str, _title: &str) {}

    fn end_group(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_in_svg() {
        let mut c = SvgCanvas::new(10, 10);
        c.text(
            0.0,
            0.0,
            "(AFIB <&>",
            10.0,
            Rgba::rgb(0, 0, 0),
            Anchor::Start,
            "t",
        );
        let svg = c.finish();
        assert!(svg.contains(">(AFIB &lt;&amp;&gt;</text>"), "{svg}");
    }

    #[test]
    fn png_text_marks_pixels() {
        let mut c = PngCanvas::new(60, 20).unwrap();
        c.text(2.0, 15.0, "N", 14.0, Rgba::rgb(0, 0, 0), Anchor::Start, "t");
        let dark = c.pixmap.data().chunks(4).filter(|p| p[0] < 128).count();
        assert!(dark > 10, "only {dark} dark pixels");
    }

    #[test]
    fn measured_width_grows_with_text() {
        let m = Measure::new().unwrap();
        let a = m.width("V", 12.0);
        let b = m.width("VVVV", 12.0);
        assert!(a > 4.0 && b > 3.5 * a, "{a} {b}");
    }
}
