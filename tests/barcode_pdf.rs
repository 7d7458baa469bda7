//! End to end for barcodes: a real PDF, rasterised like a printer would, decoded by a real scanner.
//!
//! This file owns the check that `render::barcode` output survives the whole path: printpdf
//! writes a 100×150 mm waybill page with a Code128 and a QR code, `pdftoppm` renders it at
//! thermal-printer resolutions and `zbarimg` must read both values back. Unit tests prove the
//! geometry; only this test proves that the PDF path and fill are what a scanner sees.

use printpdf::{Mm, PdfDocument, PdfPage, PdfSaveOptions};
use station::render::barcode::{self, Dpi};
use std::path::Path;
use std::process::Command;

const TRACKING: &str = "78310000123456";
const ROUTING: &str = "T3158683449786907366";
const PAGE_W_MM: f32 = 100.0;
const PAGE_H_MM: f32 = 150.0;

/// Whether a command can be started at all; `-v` is accepted by both tools.
fn on_path(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

/// Box sizes (Code128 width, QR side) in mm: a roomy layout, and a tight one where the Code128
/// modules are only 2 dots (0.25 mm) at 203 dpi, the smallest a thermal print reliably holds.
const LAYOUTS: [(f32, f32); 2] = [(70.0, 30.0), (35.0, 15.0)];

/// Lays out one waybill page with both symbols sized for `dpi` and returns the PDF bytes.
fn waybill_pdf(dpi: Dpi, (code_box_mm, qr_box_mm): (f32, f32)) -> Vec<u8> {
    // Placement is snapped to whole dots so that bar edges sit on the printer's dot grid.
    let bars = barcode::code128(TRACKING, code_box_mm, 18.0, dpi).unwrap();
    let square = barcode::qr(ROUTING, qr_box_mm, dpi).unwrap();
    let mut ops = barcode::to_ops(&bars, dpi.snap_mm(10.0), dpi.snap_mm(20.0), PAGE_H_MM);
    ops.extend(barcode::to_ops(
        &square,
        dpi.snap_mm(10.0),
        dpi.snap_mm(60.0),
        PAGE_H_MM,
    ));
    let mut doc = PdfDocument::new("barcode test waybill");
    doc.with_pages(vec![PdfPage::new(Mm(PAGE_W_MM), Mm(PAGE_H_MM), ops)]);
    let mut warnings = Vec::new();
    doc.save(&PdfSaveOptions::default(), &mut warnings)
}

/// Renders the PDF at `resolution` dpi and returns every value zbarimg decodes.
fn scan(pdf: &Path, resolution: u32, dir: &Path) -> Vec<String> {
    let stem = dir.join(format!("page-{resolution}"));
    let status = Command::new("pdftoppm")
        .args(["-r", &resolution.to_string(), "-png", "-singlefile"])
        .arg(pdf)
        .arg(&stem)
        .status()
        .expect("run pdftoppm");
    assert!(status.success(), "pdftoppm failed: {status}");
    let png = stem.with_extension("png");
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&png)
        .output()
        .expect("run zbarimg");
    // zbarimg exits with 4 when it finds no symbol; the assertion below reports that better.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn zbarimg_reads_both_barcodes_from_the_pdf() {
    if !on_path("pdftoppm") || !on_path("zbarimg") {
        // CI installs the tools and sets STATION_REQUIRE_TOOLS, so there a
        // missing tool fails the test instead of skipping it.
        assert!(
            std::env::var_os("STATION_REQUIRE_TOOLS").is_none(),
            "install poppler-utils zbar-tools (pdftoppm and zbarimg not on PATH)"
        );
        eprintln!("skipped: install poppler-utils zbar-tools (pdftoppm and zbarimg not on PATH)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Each symbol is built for one printer resolution and then rasterised at both, because a
    // label designed for 203 dpi may well end up on a 300 dpi printer and the reverse.
    for layout in LAYOUTS {
        for built_for in [Dpi(203), Dpi(300)] {
            let pdf = dir.path().join(format!("waybill-{}.pdf", built_for.0));
            std::fs::write(&pdf, waybill_pdf(built_for, layout)).unwrap();
            for resolution in [203, 300] {
                let found = scan(&pdf, resolution, dir.path());
                let case = format!(
                    "boxes {layout:?} mm, built for {} dpi, rendered at {resolution} dpi",
                    built_for.0
                );
                eprintln!("{case}: zbarimg read {found:?}");
                for expected in [TRACKING, ROUTING] {
                    assert!(
                        found.iter().any(|v| v == expected),
                        "{case}: zbarimg did not read {expected:?}, it read {found:?}"
                    );
                }
            }
        }
    }
}
