//! Barcodes for waybills: Code128 for the tracking number and QR for the courier's routing data.
//!
//! This module owns the geometry of both symbols and their conversion to printpdf drawing ops.
//! Geometry comes first and is pure (plain rectangles in millimetres), so tests can check module
//! widths, quiet zones and decodability without a PDF; `to_ops` then turns a symbol into one
//! filled path. Every module is a whole number of printer dots, because a thermal printer can
//! only burn whole dots: a 0.3-dot module would be rounded differently from bar to bar and the
//! scanner would see uneven widths.

use printpdf::{
    Color, Greyscale, LinePoint, Mm, Op, PaintMode, Point, Polygon, PolygonRing, WindingOrder,
};
use qrcode::{EcLevel, QrCode};

/// Printer resolution; module widths snap to whole dots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dpi(pub u32);

impl Default for Dpi {
    /// Most thermal label printers in the warehouse print at 203 dpi (8 dots per mm).
    fn default() -> Self {
        Dpi(203)
    }
}

impl Dpi {
    /// The size of one printer dot in millimetres.
    pub fn dot_mm(self) -> f32 {
        25.4 / self.0 as f32
    }

    /// How many whole dots fit in `mm`.
    ///
    /// A small tolerance absorbs float noise, so that a box given as exactly N dots in
    /// millimetres is not judged one dot short.
    pub fn whole_dots(self, mm: f32) -> u32 {
        (mm / self.dot_mm() + 1e-3).floor().max(0.0) as u32
    }

    /// Rounds a length to the nearest whole number of dots.
    ///
    /// Callers can use it to place a symbol on the dot grid, so that every bar edge lands on a
    /// dot boundary instead of relying on the printer driver to round all edges the same way.
    pub fn snap_mm(self, mm: f32) -> f32 {
        (mm / self.dot_mm()).round() * self.dot_mm()
    }
}

/// A dark rectangle in millimetres, measured from the top-left corner of the symbol.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// Dark rectangles in mm, origin top-left of the symbol INCLUDING its quiet zone; plus the
/// symbol's total size.
#[derive(Clone, Debug, PartialEq)]
pub struct Symbol {
    pub width_mm: f32,
    pub height_mm: f32,
    pub bars: Vec<Rect>,
}

/// Why a barcode could not be drawn; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum BarcodeError {
    #[error("cannot draw an empty {symbology}: pass the text it should carry")]
    Empty { symbology: &'static str },

    #[error(
        "Code128 of '{data}' contains {ch:?}, which scanners do not reliably read: use printable ASCII (space to '~') only"
    )]
    Code128Char { data: String, ch: char },

    #[error(
        "Code128 of '{data}' needs {needed_mm:.1} mm at {dpi} dpi (1-dot modules, 10-module quiet zones included) but the box is {box_mm:.1} mm wide: widen the box, print at a higher resolution or shorten the data"
    )]
    Code128TooWide {
        data: String,
        needed_mm: f32,
        dpi: u32,
        box_mm: f32,
    },

    #[error(
        "QR code of '{data}' needs {needed_mm:.1} mm at {dpi} dpi (1-dot modules, 4-module quiet zone included) but the box is {box_mm:.1} mm square: enlarge the box, print at a higher resolution or shorten the data"
    )]
    QrTooBig {
        data: String,
        needed_mm: f32,
        dpi: u32,
        box_mm: f32,
    },

    #[error(
        "QR code data of {len} bytes does not fit in any QR version at error-correction level {level:?} ({source}): shorten the data or choose a lower level"
    )]
    QrData {
        len: usize,
        level: EcLevel,
        source: qrcode::types::QrError,
    },

    #[error("{what} must be a positive number of millimetres, got {value}: fix the layout")]
    BadSize { what: &'static str, value: f32 },
}

/// Code128 needs a quiet zone of 10 modules on each side (ISO/IEC 15417).
pub const CODE128_QUIET_MODULES: u32 = 10;

/// QR needs a quiet zone of 4 modules around the whole symbol (ISO/IEC 18004).
pub const QR_QUIET_MODULES: u32 = 4;

/// Rejects sizes that would silently produce an empty or nonsensical symbol.
fn check_size(what: &'static str, value: f32) -> Result<(), BarcodeError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(BarcodeError::BadSize { what, value })
    }
}

/// Code128 of `data` (the crate chooses sets A/B/C), fitting within `max_width_mm` (module =
/// largest whole number of dots that fits, at least 1 dot; error if even 1-dot modules don't
/// fit), bar height `height_mm`, 10-module quiet zones each side.
pub fn code128(
    data: &str,
    max_width_mm: f32,
    height_mm: f32,
    dpi: Dpi,
) -> Result<Symbol, BarcodeError> {
    check_size("the Code128 box width", max_width_mm)?;
    check_size("the Code128 bar height", height_mm)?;
    if data.is_empty() {
        return Err(BarcodeError::Empty {
            symbology: "Code128",
        });
    }
    // Code128 can carry control characters and Latin-1, but scanners configured for
    // waybills decode printable ASCII only, so anything else is refused up front.
    if let Some(ch) = data.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(BarcodeError::Code128Char {
            data: data.to_string(),
            ch,
        });
    }
    let code = code128::Code128::encode(data.as_bytes());

    // The crate's length already counts both 10-module quiet zones.
    let total_modules = code.len() as u32;
    debug_assert_eq!(
        code.bar_coordinates().next().map(|b| b.x),
        Some(CODE128_QUIET_MODULES)
    );
    let module_dots = dpi.whole_dots(max_width_mm) / total_modules;
    if module_dots == 0 {
        return Err(BarcodeError::Code128TooWide {
            data: data.to_string(),
            needed_mm: total_modules as f32 * dpi.dot_mm(),
            dpi: dpi.0,
            box_mm: max_width_mm,
        });
    }

    // Positions are computed in whole dots and converted once, so every edge is an exact
    // multiple of the dot size rather than an accumulation of rounded millimetres.
    let dot = dpi.dot_mm();
    let bars = code
        .bar_coordinates()
        .map(|b| Rect {
            x: (b.x * module_dots) as f32 * dot,
            y: 0.0,
            w: (b.width as u32 * module_dots) as f32 * dot,
            h: height_mm,
        })
        .collect();
    Ok(Symbol {
        width_mm: (total_modules * module_dots) as f32 * dot,
        height_mm,
        bars,
    })
}

/// QR code of `data` (error-correction level M by default), module size = whole dots, fitting
/// within `max_side_mm`, 4-module quiet zone; runs of dark modules in a row merged into one rect.
pub fn qr(data: &str, max_side_mm: f32, dpi: Dpi) -> Result<Symbol, BarcodeError> {
    qr_with_level(data, max_side_mm, dpi, EcLevel::M)
}

/// Like [`qr`], with a chosen error-correction level (L, M, Q or H).
///
/// The qrcode crate scores all eight mask patterns and keeps the best one. That costs a
/// fraction of a millisecond per code, but a fixed mask can produce large blocks or shapes
/// that look like finder patterns, which hurts scanning on blurry thermal prints.
pub fn qr_with_level(
    data: &str,
    max_side_mm: f32,
    dpi: Dpi,
    level: EcLevel,
) -> Result<Symbol, BarcodeError> {
    check_size("the QR box side", max_side_mm)?;
    if data.is_empty() {
        return Err(BarcodeError::Empty {
            symbology: "QR code",
        });
    }
    let code = QrCode::with_error_correction_level(data.as_bytes(), level).map_err(|source| {
        BarcodeError::QrData {
            len: data.len(),
            level,
            source,
        }
    })?;

    let n = code.width() as u32;
    let total_modules = n + 2 * QR_QUIET_MODULES;
    let module_dots = dpi.whole_dots(max_side_mm) / total_modules;
    if module_dots == 0 {
        return Err(BarcodeError::QrTooBig {
            data: data.to_string(),
            needed_mm: total_modules as f32 * dpi.dot_mm(),
            dpi: dpi.0,
            box_mm: max_side_mm,
        });
    }

    let dot = dpi.dot_mm();
    let module_mm = module_dots as f32 * dot;
    // Converts a module index (quiet zone included) to millimetres via whole dots.
    let at = |modules: u32| (modules * module_dots) as f32 * dot;
    let colors = code.to_colors();
    let mut bars = Vec::new();
    for y in 0..n {
        // Merging each row's dark run into one rectangle keeps the path small and avoids
        // hairline seams that some rasterisers leave between abutting rectangles.
        let mut x = 0;
        while x < n {
            if colors[(y * n + x) as usize] != qrcode::Color::Dark {
                x += 1;
                continue;
            }
            let start = x;
            while x < n && colors[(y * n + x) as usize] == qrcode::Color::Dark {
                x += 1;
            }
            bars.push(Rect {
                x: at(QR_QUIET_MODULES + start),
                y: at(QR_QUIET_MODULES + y),
                w: at(x - start),
                h: module_mm,
            });
        }
    }
    let side = at(total_modules);
    Ok(Symbol {
        width_mm: side,
        height_mm: side,
        bars,
    })
}

/// The symbol as printpdf ops placed at (x_mm, y_mm) = top-left on a page of height page_h_mm
/// (PDF y grows upward): one filled polygon holding every bar as a ring, black fill.
///
/// The ops save and restore the graphics state, so the black fill does not leak into whatever
/// the caller draws next.
pub fn to_ops(sym: &Symbol, x_mm: f32, y_mm: f32, page_h_mm: f32) -> Vec<Op> {
    if sym.bars.is_empty() {
        return Vec::new();
    }
    let point = |x: f32, y_from_top: f32| LinePoint {
        p: Point::new(Mm(x_mm + x), Mm(page_h_mm - (y_mm + y_from_top))),
        bezier: false,
    };
    let rings = sym
        .bars
        .iter()
        .map(|r| PolygonRing {
            points: vec![
                point(r.x, r.y),
                point(r.x + r.w, r.y),
                point(r.x + r.w, r.y + r.h),
                point(r.x, r.y + r.h),
            ],
        })
        .collect();
    vec![
        Op::SaveGraphicsState,
        Op::SetFillColor {
            col: Color::Greyscale(Greyscale {
                percent: 0.0,
                icc_profile: None,
            }),
        },
        Op::DrawPolygon {
            polygon: Polygon {
                rings,
                mode: PaintMode::Fill,
                // The bars never overlap, so the winding rule only matters for robustness;
                // nonzero fills every ring whatever its direction.
                winding_order: WindingOrder::NonZero,
            },
        },
        Op::RestoreGraphicsState,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACKING: &str = "783100001234";

    /// Asserts that a length is a whole, non-zero number of dots.
    fn assert_whole_dots(mm: f32, dpi: Dpi, what: &str) {
        let dots = mm / dpi.dot_mm();
        assert!(
            (dots - dots.round()).abs() < 1e-3 && dots.round() >= 1.0,
            "{what} is {mm} mm = {dots} dots at {} dpi, not a whole number",
            dpi.0
        );
    }

    /// Reads the bar widths and gaps back in modules, as a scanner would, so the round trip
    /// does not trust the crate's own coordinates.
    fn reread_bars(sym: &Symbol) -> Vec<code128::Bar> {
        let module = sym.bars.iter().map(|b| b.w).fold(f32::INFINITY, f32::min);
        let modules = |mm: f32| {
            let m = mm / module;
            assert!((m - m.round()).abs() < 1e-3, "{mm} mm is not whole modules");
            m.round() as u8
        };
        sym.bars
            .iter()
            .enumerate()
            .map(|(i, b)| code128::Bar {
                width: modules(b.w),
                space: sym
                    .bars
                    .get(i + 1)
                    .map_or(0, |next| modules(next.x - (b.x + b.w))),
            })
            .collect()
    }

    #[test]
    fn code128_modules_are_whole_dots() {
        for dpi in [Dpi(203), Dpi(300)] {
            for box_mm in [30.0, 40.0, 57.3, 80.0] {
                let sym = code128(TRACKING, box_mm, 15.0, dpi).unwrap();
                assert!(sym.width_mm <= box_mm + 1e-4, "symbol wider than its box");
                assert_whole_dots(sym.width_mm, dpi, "symbol width");
                for b in &sym.bars {
                    assert_whole_dots(b.x, dpi, "bar position");
                    assert_whole_dots(b.w, dpi, "bar width");
                    assert_eq!(b.h, 15.0);
                }
            }
        }
    }

    #[test]
    fn code128_uses_the_largest_module_that_fits() {
        // A 12-digit number in set C is start + 6 + check + stop = 9 symbols:
        // 8 × 11 + 13 = 101 modules plus 20 quiet modules.
        let sym = code128(TRACKING, 40.0, 15.0, Dpi(203)).unwrap();
        let total = 121.0;
        let module = sym.width_mm / total;
        // 40 mm at 203 dpi is 319 dots, so modules are 2 dots (3 would need 363 dots).
        assert!((module - 2.0 * Dpi(203).dot_mm()).abs() < 1e-4);
    }

    #[test]
    fn code128_has_quiet_zones() {
        for dpi in [Dpi(203), Dpi(300)] {
            let sym = code128(TRACKING, 50.0, 15.0, dpi).unwrap();
            let module = sym.bars.iter().map(|b| b.w).fold(f32::INFINITY, f32::min);
            let quiet = 10.0 * module - 1e-4;
            let first = sym.bars.first().unwrap();
            let last = sym.bars.last().unwrap();
            assert!(first.x >= quiet, "left quiet zone too small");
            assert!(
                sym.width_mm - (last.x + last.w) >= quiet,
                "right quiet zone too small"
            );
        }
    }

    #[test]
    fn code128_round_trips_through_the_decoder() {
        for dpi in [Dpi(203), Dpi(300)] {
            for data in [TRACKING, "78310000123456", "SF1234567890A"] {
                let sym = code128(data, 60.0, 15.0, dpi).unwrap();
                let decoded = code128::decode_str(&reread_bars(&sym)).unwrap();
                assert_eq!(decoded, data);
            }
        }
    }

    #[test]
    fn code128_too_narrow_box_says_what_it_needs() {
        // 121 modules at 1 dot (0.125 mm) need 15.1 mm.
        let err = code128(TRACKING, 12.0, 15.0, Dpi(203)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, BarcodeError::Code128TooWide { .. }), "{msg}");
        assert!(msg.contains("'783100001234'"), "{msg}");
        assert!(msg.contains("15.1 mm at 203 dpi"), "{msg}");
        assert!(msg.contains("12.0 mm wide"), "{msg}");
        // The same box is wide enough at 300 dpi, where a dot is 0.085 mm.
        assert!(code128(TRACKING, 12.0, 15.0, Dpi(300)).is_ok());
    }

    #[test]
    fn code128_rejects_bad_input() {
        assert!(matches!(
            code128("", 40.0, 15.0, Dpi(203)),
            Err(BarcodeError::Empty { .. })
        ));
        assert!(matches!(
            code128("Füße", 40.0, 15.0, Dpi(203)),
            Err(BarcodeError::Code128Char { ch: 'ü', .. })
        ));
        assert!(matches!(
            code128(TRACKING, 40.0, 0.0, Dpi(203)),
            Err(BarcodeError::BadSize { .. })
        ));
        assert!(matches!(
            code128(TRACKING, f32::NAN, 15.0, Dpi(203)),
            Err(BarcodeError::BadSize { .. })
        ));
    }

    #[test]
    fn qr_modules_are_whole_dots_with_quiet_zone() {
        let data = "T3158683449786907366";
        for dpi in [Dpi(203), Dpi(300)] {
            for box_mm in [15.0, 25.0, 31.7] {
                let sym = qr(data, box_mm, dpi).unwrap();
                assert_eq!(sym.width_mm, sym.height_mm);
                assert!(sym.width_mm <= box_mm + 1e-4, "symbol larger than its box");
                assert_whole_dots(sym.width_mm, dpi, "symbol side");
                let module = sym.bars.iter().map(|b| b.h).fold(f32::INFINITY, f32::min);
                let quiet = 4.0 * module - 1e-4;
                for b in &sym.bars {
                    for v in [b.x, b.y, b.w, b.h] {
                        assert_whole_dots(v, dpi, "module edge");
                    }
                    assert!((b.h - module).abs() < 1e-4, "rows are one module high");
                    assert!(b.x >= quiet && b.y >= quiet, "bar in the quiet zone");
                    assert!(sym.width_mm - (b.x + b.w) >= quiet, "bar in the quiet zone");
                    assert!(
                        sym.height_mm - (b.y + b.h) >= quiet,
                        "bar in the quiet zone"
                    );
                }
            }
        }
    }

    #[test]
    fn qr_geometry_matches_the_crate_modules() {
        // Rebuilding the module grid from the merged rectangles must give back exactly the
        // crate's dark modules; this catches off-by-one errors in the run merging.
        let data = "T3158683449786907366";
        let sym = qr(data, 30.0, Dpi(203)).unwrap();
        let code = QrCode::new(data.as_bytes()).unwrap();
        let n = code.width();
        let total = n + 2 * QR_QUIET_MODULES as usize;
        let module = sym.width_mm / total as f32;
        let mut grid = vec![false; n * n];
        for b in &sym.bars {
            let x0 = (b.x / module).round() as usize - 4;
            let y = (b.y / module).round() as usize - 4;
            let run = (b.w / module).round() as usize;
            for x in x0..x0 + run {
                assert!(!grid[y * n + x], "overlapping rectangles");
                grid[y * n + x] = true;
            }
        }
        let expected: Vec<bool> = code
            .to_colors()
            .iter()
            .map(|c| *c == qrcode::Color::Dark)
            .collect();
        assert_eq!(grid, expected);
        // Merging runs must actually reduce the number of rectangles.
        assert!(sym.bars.len() < expected.iter().filter(|d| **d).count());
    }

    #[test]
    fn qr_too_small_box_and_too_long_data_give_errors() {
        // Version 1 (21 modules) plus quiet zones is 29 modules: 3.6 mm at 203 dpi.
        let err = qr("T3158683449786907366", 3.0, Dpi(203)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, BarcodeError::QrTooBig { .. }), "{msg}");
        assert!(msg.contains("3.6 mm at 203 dpi"), "{msg}");
        let huge = "x".repeat(3000);
        let err = qr(&huge, 100.0, Dpi(203)).unwrap_err();
        assert!(
            matches!(err, BarcodeError::QrData { len: 3000, .. }),
            "{err}"
        );
    }

    #[test]
    fn to_ops_is_one_black_polygon_in_pdf_coordinates() {
        let sym = code128(TRACKING, 40.0, 15.0, Dpi(203)).unwrap();
        let ops = to_ops(&sym, 10.0, 20.0, 150.0);
        assert_eq!(ops.len(), 4);
        assert!(matches!(ops[0], Op::SaveGraphicsState));
        assert!(matches!(ops[3], Op::RestoreGraphicsState));
        let Op::SetFillColor {
            col: Color::Greyscale(g),
        } = &ops[1]
        else {
            panic!("second op should set a greyscale fill: {:?}", ops[1]);
        };
        assert_eq!(g.percent, 0.0);
        let Op::DrawPolygon { polygon } = &ops[2] else {
            panic!("third op should draw the polygon: {:?}", ops[2]);
        };
        assert_eq!(polygon.mode, PaintMode::Fill);
        assert_eq!(polygon.rings.len(), sym.bars.len());
        // The first bar starts 10 modules in from the left; its top edge is 20 mm below the
        // top of a 150 mm page, i.e. 130 mm above the bottom.
        let first = &polygon.rings[0].points[0].p;
        let top_left: Point = Point::new(Mm(10.0 + sym.bars[0].x), Mm(130.0));
        assert!((first.x.0 - top_left.x.0).abs() < 1e-3);
        assert!((first.y.0 - top_left.y.0).abs() < 1e-3);
        let bottom = &polygon.rings[0].points[2].p;
        assert!((bottom.y.0 - Point::new(Mm(0.0), Mm(115.0)).y.0).abs() < 1e-3);
    }
}
