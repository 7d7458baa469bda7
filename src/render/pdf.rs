//! Writing a finished `printpdf` document to bytes, with the compression a wave can afford.
//!
//! printpdf's `save` compresses every stream through lopdf at `Compression::best()`. On a
//! 10,000-order wave that deflate search was the largest single cost in the profile
//! (≈ 23 % of CPU, `miniz_oxide::deflate::core::compress_inner`), for a few percent of
//! file size. So the station asks printpdf for the uncompressed lopdf document and
//! compresses the streams itself at [`LEVEL`], with zlib-rs (flate2's `zlib-rs` backend).
//!
//! Measured side by side (`station bench --orders 2000 --runs 1`, CPU seconds, 3 rounds):
//! miniz level 9 (printpdf's default) 3.16 s and 3.5 KB a page; zlib-rs level 6 2.71 s
//! (−14 %) for the same 3.5 KB a page; level 1 saves a little more CPU but grows pages
//! by 20–45 %, which is spool and network traffic to the printers.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use printpdf::{PdfDocument, PdfSaveOptions, PdfWarnMsg};

/// zlib level for content, font and image streams (see the module docs for why not 9).
pub const LEVEL: u32 = 6;

/// The PDF bytes of `doc`, fonts subset, streams deflated at `level`.
pub fn save(doc: &PdfDocument, level: u32, warnings: &mut Vec<PdfWarnMsg>) -> Vec<u8> {
    let options = PdfSaveOptions {
        subset_fonts: true,
        optimize: false,
        ..PdfSaveOptions::default()
    };
    let mut lo = doc.to_lopdf_document(&options, warnings);
    for object in lo.objects.values_mut() {
        if let lopdf::Object::Stream(stream) = object
            && stream.allows_compression
            && stream.dict.get(b"Filter").is_err()
        {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::new(level));
            // Writing into a Vec cannot fail.
            encoder
                .write_all(&stream.content)
                .expect("deflate into memory");
            let compressed = encoder.finish().expect("deflate into memory");
            // Same rule as lopdf: keep the stream raw when deflate does not pay for the filter.
            if compressed.len() + 19 < stream.content.len() {
                stream.dict.set("Filter", "FlateDecode");
                stream.set_content(compressed);
            }
        }
    }
    let mut bytes = Vec::new();
    lo.save_to(&mut bytes).expect("PDF into memory");
    bytes
}

/// Blank pages `pages` (1-based) of the PDF `bytes`: each keeps its place and
/// size (so the page numbers of the others stay true) but loses its content
/// and resources, and whatever only those pages used (text, barcodes, images)
/// is dropped from the file. For removing personal data from a kept file.
pub fn blank_pages(bytes: &[u8], pages: &[u32]) -> Result<Vec<u8>, lopdf::Error> {
    let mut doc = lopdf::Document::load_mem(bytes)?;
    let ids = doc.get_pages();
    for n in pages {
        let Some(&id) = ids.get(n) else { continue };
        let empty = doc.add_object(lopdf::Stream::new(lopdf::Dictionary::new(), Vec::new()));
        let page = doc.get_object_mut(id)?.as_dict_mut()?;
        page.set("Contents", lopdf::Object::Reference(empty));
        page.set("Resources", lopdf::Dictionary::new());
        page.remove(b"Annots");
    }
    doc.prune_objects();
    let mut out = Vec::new();
    doc.save_to(&mut out)?;
    Ok(out)
}

/// The number of pages of a PDF.
pub fn page_count(bytes: &[u8]) -> Result<u32, lopdf::Error> {
    Ok(lopdf::Document::load_mem(bytes)?.get_pages().len() as u32)
}
