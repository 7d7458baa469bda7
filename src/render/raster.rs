//! One label page as a 1-bit image at the printer's resolution, for thermal printers
//! that are sent a bitmap (ZPL `^GF`, TSPL `BITMAP`) instead of a PDF.
//!
//! The rasterizer draws the very `printpdf::Op`s the PDF path writes (`layout::render_doc`
//! makes them once for both), so a raster label and a PDF label are the same layout:
//! text runs at the places `layout` measured, with the glyphs and advances the PDF uses
//! (`FontChain::glyph_in`), outlines filled by `ab_glyph` and thresholded at half
//! coverage; rectangles, lines and barcode polygons filled dot by dot.
//!
//! A dot is black when its centre is inside the shape (nonzero winding). Barcode modules
//! are already whole dots wide and placed on the dot grid (`barcode::Dpi::snap_mm`), so
//! their edges fall half a dot away from any centre and every bar comes out exactly its
//! width in dots: no anti-aliasing, no rounding that could make a 2-dot bar 3 dots and
//! the barcode unreadable. The other shapes get at least one dot of thickness so that a
//! hairline never vanishes.
//!
//! Only what `layout` draws is supported: straight lines and polygons (bezier flags are
//! drawn as straight segments), greyscale/RGB/CMYK colours thresholded at 50 %, text
//! matrices that translate (no rotation), bold as fill + stroke (a dilation by half the
//! stroke width). Other operations are ignored.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, point};
use printpdf::TextRenderingMode;
use printpdf::{Color, FontId, LinePoint, Op, PaintMode, PdfFontHandle, TextItem, TextMatrix};

use super::barcode::Dpi;
use super::fonts::{FaceId, FontChain};

/// A 1-bit image: 1 = black (a burnt dot), the most significant bit of a byte is the
/// leftmost dot, rows top to bottom, each row padded to whole bytes. This is the layout
/// of ZPL `^GF` data and of PBM (P4); TSPL wants the bits inverted (see `thermal`).
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap {
    pub width_dots: u32,
    pub height_dots: u32,
    pub bytes_per_row: u32,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Bitmap({}×{} dots, {} black)",
            self.width_dots,
            self.height_dots,
            self.black_dots()
        )
    }
}

impl Bitmap {
    /// An all-white bitmap.
    pub fn new(width_dots: u32, height_dots: u32) -> Bitmap {
        let bytes_per_row = width_dots.div_ceil(8);
        Bitmap {
            width_dots,
            height_dots,
            bytes_per_row,
            data: vec![0; bytes_per_row as usize * height_dots as usize],
        }
    }

    /// Whether the dot at column `x`, row `y` (from the top) is black; outside is white.
    pub fn get(&self, x: u32, y: u32) -> bool {
        if x >= self.width_dots || y >= self.height_dots {
            return false;
        }
        let i = (y * self.bytes_per_row + x / 8) as usize;
        self.data[i] & (0x80 >> (x % 8)) != 0
    }

    /// Sets one dot; dots outside the bitmap are clipped.
    pub fn set(&mut self, x: i64, y: i64, black: bool) {
        if x < 0 || y < 0 || x >= i64::from(self.width_dots) || y >= i64::from(self.height_dots) {
            return;
        }
        let (x, y) = (x as u32, y as u32);
        let i = (y * self.bytes_per_row + x / 8) as usize;
        let bit = 0x80 >> (x % 8);
        if black {
            self.data[i] |= bit;
        } else {
            self.data[i] &= !bit;
        }
    }

    /// Sets the dots `x0..x1` of row `y` (clipped).
    fn span(&mut self, y: i64, x0: i64, x1: i64, black: bool) {
        for x in x0.max(0)..x1.min(i64::from(self.width_dots)) {
            self.set(x, y, black);
        }
    }

    /// How many dots are black.
    pub fn black_dots(&self) -> usize {
        self.data.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Clears the padding bits at the end of each row, which no encoder should carry.
    pub fn clear_padding(&mut self) {
        let pad = self.bytes_per_row * 8 - self.width_dots;
        if pad == 0 {
            return;
        }
        let mask = 0xffu8 << pad;
        for row in self.data.chunks_mut(self.bytes_per_row as usize) {
            if let Some(last) = row.last_mut() {
                *last &= mask;
            }
        }
    }

    /// The image as a binary PBM (P4) file, which `zbarimg` and most image tools read.
    pub fn to_pbm(&self) -> Vec<u8> {
        let mut out = format!("P4\n{} {}\n", self.width_dots, self.height_dots).into_bytes();
        out.extend_from_slice(&self.data);
        out
    }
}

/// The font id the raster path gives a face in its ops (there is no PDF document to
/// register fonts with); `rasterize` maps it back with `face_of`.
pub(crate) fn font_id(face: FaceId) -> FontId {
    FontId(format!("raster-{}", face.name()))
}

fn face_of(id: &FontId) -> Option<FaceId> {
    FaceId::ALL.into_iter().find(|f| font_id(*f) == *id)
}

/// The embedded faces as `ab_glyph` fonts, parsed once per process.
fn outlines(face: FaceId) -> &'static FontRef<'static> {
    static FACES: OnceLock<Vec<FontRef<'static>>> = OnceLock::new();
    let faces = FACES.get_or_init(|| {
        FaceId::ALL
            .iter()
            .map(|f| {
                // Compiled in and parsed by the PDF path too: a failure is a broken build.
                FontRef::try_from_slice(f.bytes())
                    .unwrap_or_else(|e| panic!("embedded font {} does not parse: {e}", f.name()))
            })
            .collect()
    });
    &faces[FaceId::ALL
        .iter()
        .position(|f| *f == face)
        .expect("every face")]
}

/// Black for dark colours, white for light ones (a thermal head has nothing between).
fn is_black(col: &Color) -> bool {
    let luminance = match col {
        Color::Greyscale(g) => g.percent,
        Color::Rgb(c) => 0.299 * c.r + 0.587 * c.g + 0.114 * c.b,
        Color::Cmyk(c) => (1.0 - c.c.max(c.m).max(c.y)) * (1.0 - c.k),
        Color::SpotColor(c) => (1.0 - c.c.max(c.m).max(c.y)) * (1.0 - c.k),
    };
    luminance < 0.5
}

/// The graphics state the drawn ops use; `SaveGraphicsState` pushes a copy.
#[derive(Clone)]
struct State {
    fill_black: bool,
    stroke_black: bool,
    /// Line width in dots.
    line_w: f32,
    font: Option<(FaceId, f32)>,
    mode: TextRenderingMode,
    /// Text origin in dots from the top-left.
    pen: (f32, f32),
}

/// A page converted from PDF points (origin bottom-left) to dots (origin top-left).
struct Page {
    scale: f32,
    height_pt: f32,
}

impl Page {
    fn dots(&self, p: &LinePoint) -> (f32, f32) {
        (
            p.p.x.0 * self.scale,
            (self.height_pt - p.p.y.0) * self.scale,
        )
    }
}

/// Draws one page's ops into a white bitmap of `page_mm` (width, height) at `dpi`.
pub fn rasterize(ops: &[Op], page_mm: (f32, f32), dpi: Dpi) -> Bitmap {
    let dots = |mm: f32| (mm / dpi.dot_mm()).round().max(1.0) as u32;
    let mut bm = Bitmap::new(dots(page_mm.0), dots(page_mm.1));
    let page = Page {
        scale: dpi.0 as f32 / 72.0,
        height_pt: printpdf::Pt::from(printpdf::Mm(page_mm.1)).0,
    };
    let chain = FontChain::embedded();
    let mut st = State {
        fill_black: true,
        stroke_black: true,
        line_w: page.scale,
        font: None,
        mode: TextRenderingMode::Fill,
        pen: (0.0, 0.0),
    };
    let mut saved = Vec::new();
    for op in ops {
        match op {
            Op::SaveGraphicsState => saved.push(st.clone()),
            Op::RestoreGraphicsState => {
                if let Some(s) = saved.pop() {
                    st = s;
                }
            }
            Op::SetFillColor { col } => st.fill_black = is_black(col),
            Op::SetOutlineColor { col } => st.stroke_black = is_black(col),
            Op::SetOutlineThickness { pt } => st.line_w = pt.0 * page.scale,
            Op::SetTextRenderingMode { mode } => st.mode = *mode,
            Op::SetFont { font, size } => {
                st.font = match font {
                    PdfFontHandle::External(id) => face_of(id).map(|f| (f, size.0)),
                    _ => None,
                };
            }
            Op::SetTextMatrix {
                matrix: TextMatrix::Translate(x, y),
            } => st.pen = (x.0 * page.scale, (page.height_pt - y.0) * page.scale),
            Op::ShowText { items } => show_text(&mut bm, chain, &mut st, items, page.scale),
            Op::DrawRectangle { rectangle: r } => {
                let x0 = r.x.0 * page.scale;
                let x1 = (r.x.0 + r.width.0) * page.scale;
                let y0 = (page.height_pt - r.y.0 - r.height.0) * page.scale;
                let y1 = (page.height_pt - r.y.0) * page.scale;
                let ring = vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)];
                paint(&mut bm, &[ring], r.mode.unwrap_or_default(), &st);
            }
            Op::DrawLine { line } => {
                let pts: Vec<_> = line.points.iter().map(|p| page.dots(p)).collect();
                stroke(&mut bm, &pts, line.is_closed, st.line_w, st.stroke_black);
            }
            Op::DrawPolygon { polygon } => {
                let rings: Vec<Vec<_>> = polygon
                    .rings
                    .iter()
                    .map(|r| r.points.iter().map(|p| page.dots(p)).collect())
                    .collect();
                // Always nonzero: `layout`'s rings never overlap, where even-odd is the same.
                paint(&mut bm, &rings, polygon.mode, &st);
            }
            _ => {}
        }
    }
    bm.clear_padding();
    bm
}

fn paint(bm: &mut Bitmap, rings: &[Vec<(f32, f32)>], mode: PaintMode, st: &State) {
    match mode {
        PaintMode::Fill => fill(bm, rings, st.fill_black),
        PaintMode::Stroke => {
            for r in rings {
                stroke(bm, r, true, st.line_w, st.stroke_black);
            }
        }
        PaintMode::FillStroke => {
            fill(bm, rings, st.fill_black);
            for r in rings {
                stroke(bm, r, true, st.line_w, st.stroke_black);
            }
        }
        PaintMode::Clip => {}
    }
}

/// Fills the dots whose centres are inside `rings` (nonzero winding), by scanlines.
fn fill(bm: &mut Bitmap, rings: &[Vec<(f32, f32)>], black: bool) {
    let ys = rings.iter().flatten().map(|p| p.1);
    let (lo, hi) = ys.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if !lo.is_finite() {
        return;
    }
    let first = ((lo - 0.5).ceil() as i64).max(0);
    let last = ((hi - 0.5).floor() as i64).min(i64::from(bm.height_dots) - 1);
    let mut crossings: Vec<(f32, i32)> = Vec::new();
    for row in first..=last {
        let yc = row as f32 + 0.5;
        crossings.clear();
        for ring in rings {
            for (i, &(x0, y0)) in ring.iter().enumerate() {
                let (x1, y1) = ring[(i + 1) % ring.len()];
                // Half-open in y, so a vertex shared by two edges counts once.
                let (up, down) = (y0 <= yc && yc < y1, y1 <= yc && yc < y0);
                if up || down {
                    let x = x0 + (yc - y0) / (y1 - y0) * (x1 - x0);
                    crossings.push((x, if up { 1 } else { -1 }));
                }
            }
        }
        crossings.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut winding = 0;
        for pair in crossings.windows(2) {
            winding += pair[0].1;
            if winding != 0 {
                // Dots whose centre x + 0.5 lies in [a, b).
                let x0 = (pair[0].0 - 0.5).ceil() as i64;
                let x1 = (pair[1].0 - 0.5).ceil() as i64;
                bm.span(row, x0, x1, black);
            }
        }
    }
}

/// Strokes a polyline `width` dots wide (at least one dot), each segment as a filled
/// quadrilateral, with square joins at the vertices.
fn stroke(bm: &mut Bitmap, pts: &[(f32, f32)], closed: bool, width: f32, black: bool) {
    let half = width.max(1.0) / 2.0;
    let n = pts.len();
    let segments = if closed { n } else { n.saturating_sub(1) };
    for i in 0..segments {
        let (a, b) = (pts[i], pts[(i + 1) % n]);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = (dx * dx + dy * dy).sqrt();
        if len == 0.0 {
            continue;
        }
        // Along and across the segment, half the width each; extending the ends by half
        // the width squares the corners of a stroked rectangle.
        let (ux, uy) = (dx / len * half, dy / len * half);
        let (nx, ny) = (-uy, ux);
        let ext = if closed { 1.0 } else { 0.0 };
        let (a, b) = (
            (a.0 - ux * ext, a.1 - uy * ext),
            (b.0 + ux * ext, b.1 + uy * ext),
        );
        let quad = vec![
            (a.0 + nx, a.1 + ny),
            (b.0 + nx, b.1 + ny),
            (b.0 - nx, b.1 - ny),
            (a.0 - nx, a.1 - ny),
        ];
        fill(bm, &[quad], black);
    }
}

/// Draws the glyphs of `items` from the pen, advancing it the way a PDF viewer does.
fn show_text(bm: &mut Bitmap, chain: &FontChain, st: &mut State, items: &[TextItem], scale: f32) {
    let Some((face, size_pt)) = st.font else {
        return;
    };
    let px_per_em = size_pt * scale;
    let font = outlines(face);
    let units = font.units_per_em().unwrap_or(1000.0);
    let px = PxScale::from(px_per_em * font.height_unscaled() / units);
    let bold = matches!(st.mode, TextRenderingMode::FillStroke);
    // Stroking the outline adds half the line width outside it.
    let grow = if bold {
        (st.line_w / 2.0).round().max(1.0) as i64
    } else {
        0
    };
    let black = if bold { st.stroke_black } else { st.fill_black };
    for item in items {
        match item {
            TextItem::Text(text) => {
                for ch in text.chars() {
                    let Some((gid, advance_em)) = chain.glyph_in(face, ch) else {
                        continue;
                    };
                    let glyph = GlyphId(gid).with_scale_and_position(px, point(st.pen.0, st.pen.1));
                    if let Some(outlined) = font.outline_glyph(glyph) {
                        let b = outlined.px_bounds();
                        let (w, h) = (b.width() as usize, b.height() as usize);
                        let mut mask = vec![false; w * h];
                        outlined.draw(|x, y, c| {
                            if c >= 0.5 {
                                mask[y as usize * w + x as usize] = true;
                            }
                        });
                        let (ox, oy) = (b.min.x as i64, b.min.y as i64);
                        blit(bm, &mask, w, ox, oy, grow, black);
                    }
                    st.pen.0 += advance_em * px_per_em;
                }
            }
            // Thousandths of an em, subtracted from the position (PDF `TJ`).
            TextItem::Offset(o) => st.pen.0 -= o / 1000.0 * px_per_em,
            TextItem::GlyphIds(_) => {}
        }
    }
}

/// Copies a glyph mask `w` dots wide to (`ox`, `oy`), each dot grown by `grow` dots in
/// every direction (a square dilation: the bold of fill + stroke).
fn blit(bm: &mut Bitmap, mask: &[bool], w: usize, ox: i64, oy: i64, grow: i64, black: bool) {
    if w == 0 {
        return;
    }
    for (i, _) in mask.iter().enumerate().filter(|(_, on)| **on) {
        let (x, y) = (ox + (i % w) as i64, oy + (i / w) as i64);
        for dy in -grow..=grow {
            for dx in -grow..=grow {
                bm.set(x + dx, y + dy, black);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::barcode;
    use printpdf::{Mm, Pt};

    #[test]
    fn pbm_has_the_p4_header_and_the_rows() {
        let mut bm = Bitmap::new(10, 2);
        bm.set(0, 0, true);
        bm.set(9, 1, true);
        assert_eq!(bm.bytes_per_row, 2);
        assert_eq!(bm.to_pbm(), b"P4\n10 2\n\x80\x00\x00\x40".to_vec());
    }

    #[test]
    fn a_filled_rectangle_covers_exactly_its_dots() {
        // 8 dots per mm at 203.2 dpi would be exact; at 203 dpi whole dots come from snap_mm.
        let dpi = Dpi(203);
        let d = dpi.dot_mm();
        let rect = printpdf::Rect {
            x: Pt::from(Mm(10.0 * d)),
            y: Pt::from(Mm(100.0 * d - 25.0 * d)),
            width: Pt::from(Mm(7.0 * d)),
            height: Pt::from(Mm(5.0 * d)),
            mode: Some(PaintMode::Fill),
            winding_order: None,
        };
        let bm = rasterize(
            &[Op::DrawRectangle { rectangle: rect }],
            (50.0 * d, 100.0 * d),
            dpi,
        );
        assert_eq!((bm.width_dots, bm.height_dots), (50, 100));
        assert_eq!(bm.black_dots(), 35);
        assert!(bm.get(10, 20) && bm.get(16, 24));
        assert!(!bm.get(9, 20) && !bm.get(17, 20) && !bm.get(10, 19) && !bm.get(10, 25));
    }

    /// Reads the bars of row `y` back as (start, width) runs of black dots.
    fn runs(bm: &Bitmap, y: u32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        let mut x = 0;
        while x < bm.width_dots {
            if bm.get(x, y) {
                let start = x;
                while x < bm.width_dots && bm.get(x, y) {
                    x += 1;
                }
                out.push((start, x - start));
            } else {
                x += 1;
            }
        }
        out
    }

    #[test]
    fn code128_bars_are_exactly_their_dot_widths() {
        for dpi in [Dpi(203), Dpi(300)] {
            for box_mm in [35.0, 70.0] {
                let sym = barcode::code128("783100001234", box_mm, 15.0, dpi).unwrap();
                let (x, y) = (dpi.snap_mm(5.0), dpi.snap_mm(10.0));
                let ops = barcode::to_ops(&sym, x, y, 150.0);
                let bm = rasterize(&ops, (100.0, 150.0), dpi);
                let row = dpi.whole_dots(y + 1.0);
                let got = runs(&bm, row);
                let want: Vec<(u32, u32)> = sym
                    .bars
                    .iter()
                    .map(|b| {
                        let x0 = ((x + b.x) / dpi.dot_mm()).round() as u32;
                        (x0, (b.w / dpi.dot_mm()).round() as u32)
                    })
                    .collect();
                assert_eq!(got, want, "{} dpi, {box_mm} mm box", dpi.0);
                // Every bar is as tall as the symbol, in whole dots.
                let top = (y / dpi.dot_mm()).round() as u32;
                let h = (sym.height_mm / dpi.dot_mm()).round() as u32;
                let x0 = want[0].0;
                assert!(bm.get(x0, top) && bm.get(x0, top + h - 1));
                assert!(!bm.get(x0, top - 1) && !bm.get(x0, top + h));
            }
        }
    }

    fn text_ops(face: FaceId, text: &str, size: f32, bold: bool) -> Vec<Op> {
        let mut ops = vec![Op::StartTextSection];
        if bold {
            ops.push(Op::SetTextRenderingMode {
                mode: TextRenderingMode::FillStroke,
            });
            ops.push(Op::SetOutlineThickness {
                pt: Pt(size * 0.04),
            });
        }
        ops.extend([
            Op::SetFont {
                font: PdfFontHandle::External(font_id(face)),
                size: Pt(size),
            },
            Op::SetTextMatrix {
                matrix: TextMatrix::Translate(Pt::from(Mm(5.0)), Pt::from(Mm(40.0))),
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.into())],
            },
            Op::EndTextSection,
        ]);
        ops
    }

    #[test]
    fn text_lands_where_the_layout_measured_it_and_bold_is_darker() {
        let dpi = Dpi(203);
        let chain = FontChain::embedded();
        let text = "收件人 Room 1502";
        let runs = chain.runs(text);
        // One run per face, drawn one after the other, as `layout` does.
        let mut ops = Vec::new();
        let mut x = 5.0;
        for run in &runs.runs {
            let mut one = text_ops(run.face, run.text, 12.0, false);
            one[2] = Op::SetTextMatrix {
                matrix: TextMatrix::Translate(Pt::from(Mm(x)), Pt::from(Mm(40.0))),
            };
            ops.extend(one);
            x += chain.width_mm(run.text, 12.0);
        }
        let bm = rasterize(&ops, (60.0, 50.0), dpi);
        let (mut left, mut right) = (u32::MAX, 0);
        for y in 0..bm.height_dots {
            for x in 0..bm.width_dots {
                if bm.get(x, y) {
                    left = left.min(x);
                    right = right.max(x);
                }
            }
        }
        let to_dot = |mm: f32| mm / dpi.dot_mm();
        assert!(bm.black_dots() > 200, "{bm:?}");
        // Ink starts at the pen (give or take a side bearing) and ends before the
        // measured width, within a glyph's side bearing.
        assert!((to_dot(5.0) - left as f32).abs() < 4.0, "left {left}");
        assert!(
            right as f32 <= to_dot(x) + 1.0,
            "right {right}, measured {}",
            to_dot(x)
        );
        assert!(
            right as f32 >= to_dot(x) - 8.0,
            "right {right}, measured {}",
            to_dot(x)
        );

        let plain = rasterize(
            &text_ops(FaceId::Droid, "收件人", 14.0, false),
            (60.0, 50.0),
            dpi,
        );
        let bold = rasterize(
            &text_ops(FaceId::Droid, "收件人", 14.0, true),
            (60.0, 50.0),
            dpi,
        );
        assert!(
            bold.black_dots() > plain.black_dots() * 5 / 4,
            "{plain:?} {bold:?}"
        );
    }

    #[test]
    fn white_text_on_a_black_box_clears_dots() {
        let dpi = Dpi(203);
        let mut ops = vec![Op::DrawRectangle {
            rectangle: printpdf::Rect {
                x: Pt::from(Mm(0.0)),
                y: Pt::from(Mm(0.0)),
                width: Pt::from(Mm(60.0)),
                height: Pt::from(Mm(50.0)),
                mode: Some(PaintMode::Fill),
                winding_order: None,
            },
        }];
        ops.push(Op::SetFillColor {
            col: Color::Greyscale(printpdf::Greyscale {
                percent: 1.0,
                icc_profile: None,
            }),
        });
        ops.extend(text_ops(FaceId::Droid, "加急", 16.0, false));
        let bm = rasterize(&ops, (60.0, 50.0), dpi);
        let all = (bm.width_dots * bm.height_dots) as usize;
        assert!(bm.black_dots() < all - 100, "{bm:?}");
    }

    #[test]
    fn a_hairline_keeps_one_dot() {
        let dpi = Dpi(203);
        let ops = [
            Op::SetOutlineThickness { pt: Pt(0.1) },
            Op::DrawLine {
                line: printpdf::Line {
                    points: vec![
                        LinePoint {
                            p: printpdf::Point::new(Mm(0.0), Mm(25.0)),
                            bezier: false,
                        },
                        LinePoint {
                            p: printpdf::Point::new(Mm(60.0), Mm(25.0)),
                            bezier: false,
                        },
                    ],
                    is_closed: false,
                },
            },
        ];
        let bm = rasterize(&ops, (60.0, 50.0), dpi);
        assert_eq!(bm.black_dots(), bm.width_dots as usize);
    }
}
