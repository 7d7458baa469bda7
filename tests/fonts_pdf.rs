//! End-to-end check of the font chain in a real PDF: text drawn run by run with
//! printpdf must come back out of `pdftotext`, and `pdffonts` must see every
//! face embedded, subset and with a Unicode map.
//!
//! This is the check that catches what unit tests cannot: a font that printpdf
//! embeds empty or without a ToUnicode map, or a subset that drops the glyph,
//! all of which still produce a PDF that opens but prints blanks. The tools come
//! from Debian's poppler-utils; without them the test prints why and passes.

use std::collections::BTreeMap;
use std::process::Command;

use printpdf::{
    Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Pt, TextItem, TextMatrix,
};
use station::render::fonts::{FaceId, FontChain};

const TEXT: &str = "王𠮷明 Room 1502 ，（测试）🐱";

fn tool_available(name: &str) -> bool {
    Command::new(name).arg("-v").output().is_ok()
}

/// One 100×150 mm page with `text` at 10 pt, one `SetTextMatrix` + `ShowText`
/// per run, and only the faces the text uses added to the document.
fn one_page_pdf(chain: &FontChain, text: &str) -> Vec<u8> {
    let shaped = chain.runs(text);
    assert!(shaped.missing.is_empty(), "missing: {:?}", shaped.missing);

    let mut doc = PdfDocument::new("fonts_pdf test");
    let mut ids = BTreeMap::new();
    for run in &shaped.runs {
        ids.entry(run.face)
            .or_insert_with(|| doc.add_font(chain.parsed(run.face)));
    }

    let size = 10.0;
    let mut x = Pt::from(Mm(10.0)).0;
    let y = Pt::from(Mm(130.0)).0;
    let mut ops = vec![Op::StartTextSection];
    for run in &shaped.runs {
        ops.push(Op::SetFont {
            font: PdfFontHandle::External(ids[&run.face].clone()),
            size: Pt(size),
        });
        // Absolute positions: `SetTextCursor` would be relative to the last line.
        ops.push(Op::SetTextMatrix {
            matrix: TextMatrix::Translate(Pt(x), Pt(y)),
        });
        ops.push(Op::ShowText {
            items: vec![TextItem::Text(run.text.to_string())],
        });
        x += run.width_em * size;
    }
    ops.push(Op::EndTextSection);

    let page = PdfPage::new(Mm(100.0), Mm(150.0), ops);
    let options = PdfSaveOptions {
        subset_fonts: true,
        ..PdfSaveOptions::default()
    };
    let mut warnings = Vec::new();
    doc.with_pages(vec![page]).save(&options, &mut warnings)
}

#[test]
fn chain_text_survives_a_pdf_round_trip() {
    if !tool_available("pdftotext") || !tool_available("pdffonts") {
        // CI installs the tools and sets STATION_REQUIRE_TOOLS, so there a
        // missing tool fails the test instead of skipping it.
        assert!(
            std::env::var_os("STATION_REQUIRE_TOOLS").is_none(),
            "pdftotext/pdffonts not installed (apt-get install poppler-utils)"
        );
        eprintln!("skipped: pdftotext/pdffonts not installed (apt-get install poppler-utils)");
        return;
    }
    let chain = FontChain::embedded();
    let faces: Vec<FaceId> = chain.runs(TEXT).runs.iter().map(|r| r.face).collect();
    for face in FaceId::ALL {
        assert!(faces.contains(&face), "the sample must use {}", face.name());
    }

    let bytes = one_page_pdf(chain, TEXT);
    // Subsetting keeps a one-line page small; the whole Droid font is 4 MB.
    assert!(bytes.len() < 200_000, "PDF is {} bytes", bytes.len());
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("fonts.pdf");
    std::fs::write(&pdf, &bytes).unwrap();
    // Set FONTS_PDF_KEEP=/some/file.pdf to look at the page (pdftoppm -png).
    if let Some(keep) = std::env::var_os("FONTS_PDF_KEEP") {
        std::fs::write(keep, &bytes).unwrap();
    }

    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Runs are placed separately, so pdftotext may or may not put spaces between
    // them; the characters and their order are what must survive.
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let got = String::from_utf8(out.stdout).unwrap();
    assert_eq!(squash(&got), squash(TEXT), "pdftotext gave {got:?}");

    let out = Command::new("pdffonts").arg(&pdf).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    // Skip the two header lines; each font line ends in `emb sub uni object ID`.
    let fonts: Vec<&str> = listing.lines().skip(2).collect();
    assert_eq!(fonts.len(), FaceId::ALL.len(), "{listing}");
    for line in fonts {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let n = cols.len();
        assert!(n >= 6, "{listing}");
        assert_eq!(&cols[n - 5..n - 2], ["yes", "yes", "yes"], "{line}");
    }
}
