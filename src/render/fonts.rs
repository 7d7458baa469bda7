//! The embedded fonts, the per-character fallback chain and text measuring.
//!
//! This module owns the four font files committed under `fonts/` (see
//! `fonts/README.md` for where each came from and how the Noto subset was made),
//! parses them once per process, and answers three questions for the renderers:
//! which face draws which part of a string (`FontChain::runs`), how wide a string
//! is (`FontChain::width_mm`), and how a string breaks into lines inside a box
//! (`wrap`, `fit`).
//!
//! No PDF crate here does font fallback, and a character that no font has is
//! drawn as `.notdef` and silently vanishes from the printed label. So every
//! function here reports such characters instead of dropping them, and `fit`
//! reports text that does not fit instead of cutting it; the caller flags the
//! order.
//!
//! Measuring uses the fonts' own advance widths (hmtx ÷ units-per-em) without
//! kerning or shaping, which is exactly how printpdf positions glyphs for
//! `Op::ShowText`, so the measured width is the printed width.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use printpdf::ParsedFont;

/// Millimetres per PostScript point (1 pt = 1/72 inch).
pub const MM_PER_PT: f32 = 25.4 / 72.0;

/// Line height as a multiple of the font size, used by `fit_box`.
///
/// 1.2 is the usual leading for CJK body text; Droid's own ascent + descent is
/// close to 1.0 em, so 1.2 leaves a visible gap between lines on thermal labels.
pub const LINE_HEIGHT: f32 = 1.2;

/// How far `fit` shrinks the font per step, in points.
///
/// Half a point is small enough to find a size close to the largest that fits and
/// large enough to keep the search at a handful of wraps.
pub const FIT_STEP_PT: f32 = 0.5;

const DROID: &[u8] = include_bytes!("../../fonts/DroidSansFallbackFull.ttf");
const ROBOTO: &[u8] = include_bytes!("../../fonts/Roboto-Regular.ttf");
const NOTO_SUPPLEMENT: &[u8] = include_bytes!("../../fonts/NotoSansCJKsc-Supplement.otf");
const NOTO_EMOJI: &[u8] = include_bytes!("../../fonts/NotoEmoji-Regular.ttf");

/// One face of the chain, in fallback order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaceId {
    /// Droid Sans Fallback Full: all basic hanzi and Ext-A, CJK punctuation,
    /// fullwidth forms. It has a space but no other ASCII.
    Droid,
    /// Roboto Regular: Latin, digits and the Western punctuation Droid lacks
    /// (“”‘’—…·).
    Roboto,
    /// A small subset of Noto Sans CJK SC: CJK Ext-B and later, compatibility
    /// ideographs and the CJK punctuation and symbols the first two lack.
    NotoSupplement,
    /// Noto Emoji, the monochrome one: emoji in buyers' nicknames and
    /// messages, drawn as outlines (one glyph per code point: a ZWJ sequence
    /// shows as its parts, the joiners and variation selectors are dropped).
    Emoji,
}

impl FaceId {
    /// All faces in the order the chain tries them.
    pub const ALL: [FaceId; 4] = [
        FaceId::Droid,
        FaceId::Roboto,
        FaceId::NotoSupplement,
        FaceId::Emoji,
    ];

    /// A short human-readable name, for logs and test messages.
    pub fn name(self) -> &'static str {
        match self {
            FaceId::Droid => "Droid Sans Fallback Full",
            FaceId::Roboto => "Roboto Regular",
            FaceId::NotoSupplement => "Noto Sans CJK SC (supplement subset)",
            FaceId::Emoji => "Noto Emoji (monochrome)",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The font file compiled in for this face, for the thermal rasterizer (which draws
    /// the outlines itself; the PDF path embeds the parsed font instead).
    pub fn bytes(self) -> &'static [u8] {
        match self {
            FaceId::Droid => DROID,
            FaceId::Roboto => ROBOTO,
            FaceId::NotoSupplement => NOTO_SUPPLEMENT,
            FaceId::Emoji => NOTO_EMOJI,
        }
    }
}

/// A stretch of text drawn with one face.
#[derive(Clone, Debug, PartialEq)]
pub struct Run<'t> {
    /// The face that has every character of `text`.
    pub face: FaceId,
    /// A slice of the input; it never contains controls, zero-width or bidi
    /// characters, or characters that no face has.
    pub text: &'t str,
    /// The advance width of `text` in ems (multiply by the size to get points).
    pub width_em: f32,
}

/// The result of splitting text into runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shaped<'t> {
    /// Runs in text order, ready for one `SetTextMatrix` + `ShowText` each.
    pub runs: Vec<Run<'t>>,
    /// Characters that no face has, once each, in order of first appearance.
    /// They are left out of `runs`, so a caller that prints anyway must flag it.
    pub missing: Vec<char>,
}

impl Shaped<'_> {
    /// The total advance width of all runs, in ems.
    pub fn width_em(&self) -> f32 {
        self.runs.iter().map(|r| r.width_em).sum()
    }
}

/// Text fitted into a box by `fit` or `fit_box`.
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    /// The size the lines were wrapped at.
    pub size_pt: f32,
    /// The wrapped lines: all of them, unless `overflow`, when only those that
    /// fit the box come back, the last ending in "…".
    pub lines: Vec<String>,
    /// True when even the minimum size needs more lines than the box holds, or a
    /// single character is wider than the box: the text was cut to the box and
    /// the caller must flag the order for a person.
    pub overflow: bool,
}

/// A glyph found for a character: which face, which glyph, how wide.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Glyph {
    face: FaceId,
    gid: u16,
    advance_em: f32,
}

/// What a character is, as far as drawing goes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Class {
    /// Drawn with this glyph.
    Glyph(Glyph),
    /// A control, zero-width or bidi character: no width, never drawn, never
    /// reported as missing.
    Ignorable,
    /// No face has it.
    Missing,
}

struct Face {
    id: FaceId,
    font: ParsedFont,
    units_per_em: f32,
}

impl Face {
    fn parse(id: FaceId, bytes: &[u8]) -> Face {
        let mut warnings = Vec::new();
        // The fonts are compiled in and covered by the tests, so a parse failure is
        // a broken build, not a runtime condition worth an error path.
        let font = ParsedFont::from_bytes(bytes, 0, &mut warnings)
            .unwrap_or_else(|| panic!("embedded font {} does not parse: {warnings:?}", id.name()));
        let units_per_em = f32::from(font.pdf_font_metrics.units_per_em.max(1));
        Face {
            id,
            font,
            units_per_em,
        }
    }

    fn glyph(&self, ch: char) -> Option<Glyph> {
        let gid = self.font.lookup_glyph_index(u32::from(ch))?;
        if gid == 0 {
            return None;
        }
        let advance = f32::from(self.font.get_horizontal_advance(gid));
        Some(Glyph {
            face: self.id,
            gid,
            advance_em: advance / self.units_per_em,
        })
    }
}

/// The faces in fallback order plus a cache of what each character resolved to.
pub struct FontChain {
    faces: Vec<Face>,
    /// Char → first face that has it. Glyph lookup in the big cmaps is the
    /// expensive part of measuring, and a label repeats the same few hundred
    /// characters, so each is looked up once per process.
    cache: RwLock<HashMap<char, Class>>,
}

impl FontChain {
    /// The chain of the fonts compiled into the binary, parsed on first use.
    pub fn embedded() -> &'static FontChain {
        static CHAIN: OnceLock<FontChain> = OnceLock::new();
        CHAIN.get_or_init(|| {
            FontChain::from_faces(vec![
                Face::parse(FaceId::Droid, DROID),
                Face::parse(FaceId::Roboto, ROBOTO),
                Face::parse(FaceId::NotoSupplement, NOTO_SUPPLEMENT),
                Face::parse(FaceId::Emoji, NOTO_EMOJI),
            ])
        })
    }

    fn from_faces(faces: Vec<Face>) -> FontChain {
        // `face()` indexes by `FaceId`, so the order must match the enum.
        debug_assert!(faces.iter().map(|f| f.id).eq(FaceId::ALL));
        FontChain {
            faces,
            cache: RwLock::new(HashMap::new()),
        }
    }

    fn face(&self, id: FaceId) -> &Face {
        &self.faces[id.index()]
    }

    /// The parsed font of a face, for `PdfDocument::add_font` (once per document).
    pub fn parsed(&self, face: FaceId) -> &ParsedFont {
        &self.face(face).font
    }

    /// Whether some face has a glyph for `ch` (ignorable characters count as
    /// covered, because they are never drawn).
    pub fn covers(&self, ch: char) -> bool {
        self.class(ch) != Class::Missing
    }

    /// The face that draws `ch` on its own, or `None` for ignorable and missing
    /// characters.
    pub fn face_for(&self, ch: char) -> Option<FaceId> {
        match self.class(ch) {
            Class::Glyph(g) => Some(g.face),
            _ => None,
        }
    }

    fn class(&self, ch: char) -> Class {
        if is_ignorable(ch) {
            return Class::Ignorable;
        }
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        if let Some(class) = cache.get(&ch) {
            return *class;
        }
        drop(cache);
        let class = self
            .faces
            .iter()
            .find_map(|f| f.glyph(ch))
            .map_or(Class::Missing, Class::Glyph);
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ch, class);
        class
    }

    /// The glyph that draws `ch` right after a character drawn with `prev`.
    ///
    /// Spaces are neutral: they stay in the face of the run they are in when that
    /// face has them. Droid has a space but no Latin, so without this every space
    /// in "Room 1502" would split a Roboto run in three and use Droid's space width.
    fn resolve(&self, ch: char, prev: Option<FaceId>) -> Class {
        if let Some(prev) = prev
            && is_neutral(ch)
            && let Some(g) = self.face(prev).glyph(ch)
        {
            return Class::Glyph(g);
        }
        self.class(ch)
    }

    /// Split text into runs, each drawn with the first face that has every
    /// character of the run (glyph id ≠ 0).
    ///
    /// Characters that no face has are returned in `missing` and left out of the
    /// runs; controls (including `\n` and `\t`: wrap first, `wrap` turns tabs into
    /// spaces), zero-width and bidi characters are left out silently because they
    /// have nothing to draw. A left-out character ends the current run, which
    /// keeps every run a slice of the input.
    pub fn runs<'t>(&self, text: &'t str) -> Shaped<'t> {
        let mut shaped = Shaped::default();
        // The run being built: face, start byte, width so far.
        let mut current: Option<(FaceId, usize, f32)> = None;
        for (i, ch) in text.char_indices() {
            match self.resolve(ch, current.map(|c| c.0)) {
                Class::Glyph(g) => match &mut current {
                    Some((face, _, width)) if *face == g.face => *width += g.advance_em,
                    _ => {
                        close_run(&mut shaped, text, current.take(), i);
                        current = Some((g.face, i, g.advance_em));
                    }
                },
                class => {
                    close_run(&mut shaped, text, current.take(), i);
                    if class == Class::Missing && !shaped.missing.contains(&ch) {
                        shaped.missing.push(ch);
                    }
                }
            }
        }
        close_run(&mut shaped, text, current, text.len());
        shaped
    }

    /// The printed width of `text` at `size_pt`, in millimetres.
    ///
    /// Ignorable and missing characters count as zero, because `runs` leaves them
    /// out of what is drawn.
    pub fn width_mm(&self, text: &str, size_pt: f32) -> f32 {
        self.width_em(text) * size_pt * MM_PER_PT
    }

    /// The advance width of `text` in ems, with the same face choice as `runs`.
    pub fn width_em(&self, text: &str) -> f32 {
        self.measure(text, None).0
    }

    /// The width in ems of `text` drawn right after a run in face `prev`, and the
    /// face the text ends in. Wrapping measures line by line with this, so that
    /// a space gets the same face (and width) as when the finished line is drawn.
    fn measure(&self, text: &str, mut prev: Option<FaceId>) -> (f32, Option<FaceId>) {
        let mut width = 0.0;
        for ch in text.chars() {
            match self.resolve(ch, prev) {
                Class::Glyph(g) => {
                    width += g.advance_em;
                    prev = Some(g.face);
                }
                // A left-out character ends the run in `runs` too.
                _ => prev = None,
            }
        }
        (width, prev)
    }

    /// The glyph `ch` has in `face` and its advance in ems, looked up the way
    /// printpdf does when it writes `Op::ShowText` in that face (cmap, then hmtx),
    /// so that a rasterizer drawing a run lands every glyph where the PDF does.
    /// `None` when the face has no glyph for it (the PDF would show `.notdef`).
    pub fn glyph_in(&self, face: FaceId, ch: char) -> Option<(u16, f32)> {
        self.face(face).glyph(ch).map(|g| (g.gid, g.advance_em))
    }

    /// The glyph id `ch` is drawn with and its face, for callers that emit
    /// glyph ids themselves.
    pub fn glyph_id(&self, ch: char) -> Option<(FaceId, u16)> {
        match self.class(ch) {
            Class::Glyph(g) => Some((g.face, g.gid)),
            _ => None,
        }
    }
}

fn close_run<'t>(
    shaped: &mut Shaped<'t>,
    text: &'t str,
    run: Option<(FaceId, usize, f32)>,
    end: usize,
) {
    if let Some((face, start, width_em)) = run {
        shaped.runs.push(Run {
            face,
            text: &text[start..end],
            width_em,
        });
    }
}

/// Characters that take the face of the run they are in.
fn is_neutral(ch: char) -> bool {
    matches!(ch, ' ' | '\u{a0}')
}

/// Controls, zero-width and bidi formatting characters: zero width, never drawn,
/// never missing. Variation selectors are here too, because they only pick a
/// glyph variant that the base character's face draws anyway.
fn is_ignorable(ch: char) -> bool {
    ch.is_control()
        || matches!(ch,
            '\u{ad}'                       // soft hyphen
            | '\u{34f}'                    // combining grapheme joiner
            | '\u{61c}'                    // Arabic letter mark
            | '\u{180e}'                   // Mongolian vowel separator
            | '\u{200b}'..='\u{200f}'      // zero-width space, ZWNJ, ZWJ, LRM, RLM
            | '\u{202a}'..='\u{202e}'      // bidi embeddings and overrides
            | '\u{2060}'..='\u{206f}'      // word joiner, invisible operators, bidi isolates
            | '\u{fe00}'..='\u{fe0f}'      // variation selectors
            | '\u{feff}'                   // byte order mark / zero-width no-break space
            | '\u{fff9}'..='\u{fffb}'      // interlinear annotation controls
            | '\u{e0000}'..='\u{e0fff}') // tags and variation selectors supplement
}

/// C0/C1 controls that must not reach the output. `\n` is consumed by `wrap`
/// as a line break before this is asked; tabs become spaces instead.
fn is_stripped_control(ch: char) -> bool {
    ch.is_control() && ch != '\t'
}

/// Punctuation that must not start a line (it stays with the previous character).
fn is_closing(ch: char) -> bool {
    CLOSING.contains(ch)
}

// Fullwidth and Western closers, plus the dash, ellipsis and middle dot, which
// Chinese typesetting keeps off the start of a line too.
const CLOSING: &str = "，。、；：？！）》」』】〕〗〙〉〛］｝＞”’…—·・％‰℃°～｡､〞〟．,.;:?!)]}%";

/// Punctuation that must not end a line (it stays with the next character).
fn is_opening(ch: char) -> bool {
    OPENING.contains(ch)
}

const OPENING: &str = "（《「『【〔〖〘〈〚［｛＜“‘〝([{";

/// Wide characters (CJK, fullwidth forms, emoji): a line may break before or
/// after any of them, which is how Chinese is set.
fn is_wide(ch: char) -> bool {
    matches!(ch,
        '\u{1100}'..='\u{115f}'
        | '\u{2e80}'..='\u{a4cf}'
        | '\u{ac00}'..='\u{d7a3}'
        | '\u{f900}'..='\u{faff}'
        | '\u{fe10}'..='\u{fe1f}'
        | '\u{fe30}'..='\u{fe6f}'
        | '\u{ff00}'..='\u{ffef}'
        | '\u{1f000}'..='\u{1faff}'
        | '\u{20000}'..='\u{3ffff}')
        || is_closing(ch) && !ch.is_ascii()
        || is_opening(ch) && !ch.is_ascii()
}

/// Whether a line may break between two adjacent non-space characters.
fn may_break_between(prev: char, next: char) -> bool {
    if is_closing(next) || is_opening(prev) {
        return false;
    }
    // Between two Latin characters (a word, a number, "e.g.", "taobao.com")
    // there is no break; next to a wide character there always is.
    is_wide(prev) || is_wide(next)
}

/// Greedy wrap to `width_mm` at `size_pt`.
///
/// Chinese breaks between any two characters; Latin words are kept whole when
/// they fit on a line and broken by character only when one alone is wider than
/// the line. Closing punctuation (，。、）》” …) never starts a line and opening
/// punctuation (（《“ …) never ends one. Explicit `\n` starts a new line (`\r` is
/// dropped, so CRLF works); tabs become spaces; other C0/C1 controls are removed.
/// Spaces at a break are dropped. A line is wider than `width_mm` only when a
/// single character is; `fit` reports that as overflow.
pub fn wrap(chain: &FontChain, text: &str, size_pt: f32, width_mm: f32) -> Vec<String> {
    let scale = size_pt * MM_PER_PT;
    let max_em = if scale > 0.0 { width_mm / scale } else { 0.0 };
    let mut lines = Vec::new();
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return lines;
    }
    for paragraph in text.split('\n') {
        let clean: String = paragraph
            .chars()
            .filter(|&c| !is_stripped_control(c))
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        wrap_paragraph(chain, &clean, max_em, &mut lines);
    }
    lines
}

/// A piece of a paragraph between two break opportunities.
enum Piece<'a> {
    /// Spaces: a break opportunity, dropped at the start and end of a line.
    Space(&'a str),
    /// Characters that stay together unless the piece alone is wider than a line.
    Word(&'a str),
}

fn pieces(paragraph: &str) -> Vec<Piece<'_>> {
    // First the spans between break opportunities: (start, end, is_space).
    let mut spans: Vec<(usize, usize, bool)> = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    for (i, ch) in paragraph.char_indices() {
        let is_space = is_break_space(ch);
        if let Some(p) = prev {
            let p_space = is_break_space(p);
            let boundary = if p_space || is_space {
                p_space != is_space
            } else {
                may_break_between(p, ch)
            };
            if boundary {
                spans.push((start, i, p_space));
                start = i;
            }
        }
        // Zero-width characters do not change what the break rules see.
        if !is_ignorable(ch) {
            prev = Some(ch);
        }
    }
    if let Some(p) = prev {
        spans.push((start, paragraph.len(), is_break_space(p)));
    }

    // A space before closing punctuation or after opening punctuation is no
    // break opportunity: input like "1502 ，" would otherwise start a line with
    // "，". Such a space is glued into one word with its neighbours.
    let visible = |s: &str| {
        s.chars()
            .filter(|&c| !is_ignorable(c))
            .collect::<Vec<char>>()
    };
    let mut merged: Vec<(usize, usize, bool)> = Vec::new();
    let mut i = 0;
    while i < spans.len() {
        let (s, e, space) = spans[i];
        if space
            && let (Some(&(ps, _, false)), Some(&(_, ne, false))) =
                (merged.last(), spans.get(i + 1))
        {
            let before = visible(&paragraph[ps..s]);
            let after = visible(&paragraph[e..ne]);
            if before.last().is_some_and(|&c| is_opening(c))
                || after.first().is_some_and(|&c| is_closing(c))
            {
                merged.last_mut().unwrap().1 = ne;
                i += 2;
                continue;
            }
        }
        merged.push((s, e, space));
        i += 1;
    }
    merged
        .into_iter()
        .map(|(s, e, space)| {
            let text = &paragraph[s..e];
            if space {
                Piece::Space(text)
            } else {
                Piece::Word(text)
            }
        })
        .collect()
}

/// Spaces where a line may break. The ideographic space counts, because
/// addresses use it as a separator; the no-break space does not, by definition.
fn is_break_space(ch: char) -> bool {
    matches!(ch, ' ' | '\u{3000}')
}

fn wrap_paragraph(chain: &FontChain, paragraph: &str, max_em: f32, lines: &mut Vec<String>) {
    // A tolerance for float sums, far below anything a printer can show.
    let max_em = max_em + 1e-4;
    let mut line = String::new();
    let mut line_em = 0.0;
    // The face the line ends in, which decides the face of the next space.
    let mut line_face = None;
    let mut pending = String::new();
    for piece in pieces(paragraph) {
        match piece {
            Piece::Space(s) => {
                if !line.is_empty() {
                    pending.push_str(s);
                }
            }
            Piece::Word(word) => {
                let (gap_em, gap_face) = chain.measure(&pending, line_face);
                let (word_em, word_face) = chain.measure(word, gap_face);
                if !line.is_empty() && line_em + gap_em + word_em <= max_em {
                    line.push_str(&pending);
                    line.push_str(word);
                    line_em += gap_em + word_em;
                    line_face = word_face;
                } else {
                    if !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                    }
                    let (word_em, word_face) = chain.measure(word, None);
                    if word_em <= max_em {
                        line.push_str(word);
                        line_em = word_em;
                        line_face = word_face;
                    } else {
                        let (full, rest) = split_long_word(chain, word, max_em);
                        lines.extend(full);
                        (line_em, line_face) = chain.measure(&rest, None);
                        line = rest;
                    }
                }
                pending.clear();
            }
        }
    }
    // An empty paragraph (two `\n` in a row) is an intended blank line.
    lines.push(line);
}

/// Break a piece that is wider than a line by characters: full lines, then the
/// remainder that starts the next line. A closing character never starts a line:
/// the character before it moves down with it, unless that would leave a line
/// empty (a line of closers has nowhere better to go).
fn split_long_word(chain: &FontChain, word: &str, max_em: f32) -> (Vec<String>, String) {
    let chars: Vec<char> = word.chars().collect();
    let mut full = Vec::new();
    let mut start = 0;
    loop {
        let mut end = start;
        let mut em = 0.0;
        let mut face = None;
        while end < chars.len() {
            let (w, f) = chain.measure(chars[end].encode_utf8(&mut [0; 4]), face);
            // Always take one character, so a character wider than the line still
            // makes progress (and `fit` reports the overflow).
            if end > start && em + w > max_em {
                break;
            }
            em += w;
            face = f;
            end += 1;
        }
        if end == chars.len() {
            return (full, chars[start..].iter().collect());
        }
        let mut cut = end;
        while cut > start + 1 && (is_closing(chars[cut]) || is_opening(chars[cut - 1])) {
            cut -= 1;
        }
        full.push(chars[start..cut].iter().collect());
        start = cut;
    }
}

/// Fit text in a box `max_lines` high: wrap at `size_pt`; while it needs more
/// lines, shrink by `FIT_STEP_PT` down to `min_pt`. If it still does not fit,
/// return every line at `min_pt` with `overflow: true`, so the caller can flag
/// the order instead of printing a cut address.
pub fn fit(
    chain: &FontChain,
    text: &str,
    size_pt: f32,
    min_pt: f32,
    width_mm: f32,
    max_lines: usize,
) -> Fitted {
    fit_with(chain, text, size_pt, min_pt, width_mm, |_| max_lines)
}

/// Like `fit`, for a box `height_mm` high: the number of lines it holds grows as
/// the size shrinks (line height `LINE_HEIGHT` × size).
pub fn fit_box(
    chain: &FontChain,
    text: &str,
    size_pt: f32,
    min_pt: f32,
    width_mm: f32,
    height_mm: f32,
) -> Fitted {
    fit_with(chain, text, size_pt, min_pt, width_mm, |size| {
        lines_in_height(height_mm, size)
    })
}

/// How many lines of `size_pt` text fit in `height_mm`.
pub fn lines_in_height(height_mm: f32, size_pt: f32) -> usize {
    let line_mm = size_pt * LINE_HEIGHT * MM_PER_PT;
    if line_mm <= 0.0 {
        return 0;
    }
    // The tolerance keeps an exact fit (30 mm for lines of 7.5 mm) from losing
    // a line to rounding.
    (height_mm / line_mm + 1e-4).floor().max(0.0) as usize
}

fn fit_with(
    chain: &FontChain,
    text: &str,
    size_pt: f32,
    min_pt: f32,
    width_mm: f32,
    max_lines_at: impl Fn(f32) -> usize,
) -> Fitted {
    let min_pt = min_pt.min(size_pt);
    let mut size = size_pt;
    loop {
        let lines = wrap(chain, text, size, width_mm);
        let too_wide = lines
            .iter()
            .any(|l| chain.width_mm(l, size) > width_mm + 1e-3);
        let fits = lines.len() <= max_lines_at(size) && !too_wide;
        if fits || size <= min_pt {
            return Fitted {
                size_pt: size,
                lines,
                overflow: !fits,
            };
        }
        size = (size - FIT_STEP_PT).max(min_pt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> &'static FontChain {
        FontChain::embedded()
    }

    #[test]
    fn common_hanzi_are_drawn_with_droid() {
        for ch in "王明北京市朝阳区建国路测试㙟䶮，。（）".chars() {
            assert_eq!(chain().face_for(ch), Some(FaceId::Droid), "{ch}");
        }
    }

    #[test]
    fn ascii_and_western_punctuation_are_drawn_with_roboto() {
        for ch in "Room1502ABCxyz-#/@“”‘’—…·".chars() {
            assert_eq!(chain().face_for(ch), Some(FaceId::Roboto), "{ch}");
        }
        // Spaces inside Latin stay in the Roboto run instead of splitting it.
        let shaped = chain().runs("Room 1502 B");
        assert_eq!(shaped.runs.len(), 1);
        assert_eq!(shaped.runs[0].face, FaceId::Roboto);
        assert_eq!(shaped.runs[0].text, "Room 1502 B");
    }

    #[test]
    fn ext_b_and_rare_punctuation_come_from_the_noto_subset() {
        for ch in ['𠮷', '𫖯', '𬭚', '𩽾', '〈', '①', '★'] {
            assert_eq!(chain().face_for(ch), Some(FaceId::NotoSupplement), "{ch}");
        }
    }

    #[test]
    fn emoji_are_drawn_with_the_emoji_font() {
        let shaped = chain().runs("王😀明🚚❤\u{fe0f}👨\u{200d}👩\u{200d}👧");
        assert!(shaped.missing.is_empty(), "{:?}", shaped.missing);
        let parts: Vec<(FaceId, &str)> = shaped.runs.iter().map(|r| (r.face, r.text)).collect();
        assert_eq!(parts[0], (FaceId::Droid, "王"));
        assert_eq!(parts[1], (FaceId::Emoji, "😀"));
        for ch in ['😀', '🚚', '👨', '🧧', '🐱'] {
            assert_eq!(chain().face_for(ch), Some(FaceId::Emoji), "{ch}");
        }
        // The joiners and the variation selector draw nothing; the parts do.
        let drawn: String = shaped.runs.iter().map(|r| r.text).collect();
        assert_eq!(drawn, "王😀明🚚❤👨👩👧");
    }

    #[test]
    fn a_character_in_no_font_is_reported_missing_and_left_out_of_runs() {
        // Linear B and a private-use code point: in none of the four fonts.
        let shaped = chain().runs("王\u{10000}明\u{e000}");
        assert_eq!(shaped.missing, vec!['\u{10000}', '\u{e000}']);
        let drawn: String = shaped.runs.iter().map(|r| r.text).collect();
        assert_eq!(drawn, "王明");
    }

    #[test]
    fn controls_and_zero_width_are_not_missing() {
        let text = "王\u{200b}明\u{feff}\u{202e}A\u{0}\u{1b}\u{85}\u{fe0f}B\n";
        let shaped = chain().runs(text);
        assert!(shaped.missing.is_empty(), "{:?}", shaped.missing);
        let drawn: String = shaped.runs.iter().map(|r| r.text).collect();
        assert_eq!(drawn, "王明AB");
        assert_eq!(chain().width_em(text), chain().width_em("王明AB"));
        assert_eq!(
            wrap(chain(), "a\u{7}b\u{9b}c\r\nd\te", 10.0, 100.0),
            vec!["abc", "d e"]
        );
    }

    #[test]
    fn runs_split_by_face_and_measure_in_em() {
        let shaped = chain().runs("王𠮷明 Room 1502 ，（测试）");
        let parts: Vec<(FaceId, &str)> = shaped.runs.iter().map(|r| (r.face, r.text)).collect();
        assert_eq!(
            parts,
            vec![
                (FaceId::Droid, "王"),
                (FaceId::NotoSupplement, "𠮷"),
                (FaceId::Droid, "明 "),
                (FaceId::Roboto, "Room 1502 "),
                (FaceId::Droid, "，（测试）"),
            ]
        );
        assert!(shaped.missing.is_empty());
        // Hanzi are one em wide in both CJK fonts.
        assert!((shaped.runs[0].width_em - 1.0).abs() < 0.01);
        assert!((shaped.runs[1].width_em - 1.0).abs() < 0.01);
        let total = chain().width_mm("王𠮷明 Room 1502 ，（测试）", 10.0);
        assert!((total - shaped.width_em() * 10.0 * MM_PER_PT).abs() < 1e-3);
    }

    const ADDRESS: &str = "浙江省杭州市余杭区五常街道文一西路969号阿里巴巴西溪园区3号楼（北门）\
        菜鸟驿站代收，收件人：王𠮷明，电话：13800138000。请放门口，谢谢！Room 1502, Building B, \
        “Sunshine” Garden—近地铁站…";

    fn assert_lines_ok(text: &str, size: f32, width: f32, lines: &[String]) {
        for (i, line) in lines.iter().enumerate() {
            let w = chain().width_mm(line, size);
            assert!(
                w <= width + 1e-3,
                "line {i} {line:?} is {w} mm > {width} mm"
            );
            if let Some(first) = line.chars().next() {
                assert!(
                    !is_closing(first),
                    "line {i} starts with {first:?}: {lines:?}"
                );
            }
            if let Some(last) = line.chars().last() {
                assert!(!is_opening(last), "line {i} ends with {last:?}: {lines:?}");
            }
        }
        // Nothing is lost except the spaces at the breaks.
        let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        assert_eq!(strip(&lines.concat()), strip(text));
    }

    #[test]
    fn wrap_never_exceeds_width_and_keeps_punctuation_rules() {
        let text = ADDRESS.repeat(3);
        for width in [20.0, 33.3, 47.0, 60.0, 96.0] {
            for size in [6.0, 8.0, 9.5, 12.0] {
                let lines = wrap(chain(), &text, size, width);
                assert!(lines.len() > 1);
                assert_lines_ok(&text, size, width, &lines);
            }
        }
    }

    #[test]
    fn closing_punctuation_never_starts_a_line() {
        // Width for exactly four hanzi at 10 pt: the fifth char is always a closer.
        let width = 4.0 * 10.0 * MM_PER_PT + 0.01;
        for text in [
            "测试测试，测试测试。",
            "测试测试）》”",
            "一二三四、五六七八。。。九",
        ] {
            let lines = wrap(chain(), text, 10.0, width);
            assert_lines_ok(text, 10.0, width, &lines);
        }
        let lines = wrap(chain(), "测试测试，测试", 10.0, width);
        assert_eq!(lines, vec!["测试测", "试，测试"]);
        // A space before a closer or after an opener is not a place to break.
        let lines = wrap(chain(), "测试测试 ，测试（ 测试", 10.0, width);
        assert_lines_ok("测试测试 ，测试（ 测试", 10.0, width, &lines);
        assert_eq!(lines, vec!["测试测", "试 ，测", "试（ 测", "试"]);
    }

    #[test]
    fn latin_words_stay_whole_and_newlines_are_honoured() {
        let lines = wrap(chain(), "收件人 Sunshine Garden\n\n第二行", 10.0, 30.0);
        assert_eq!(lines, vec!["收件人 Sunshine", "Garden", "", "第二行"]);
        // A word wider than the line is broken by character rather than overflowing.
        let long = "https://example.com/a/very/long/tracking/path/that/does/not/fit";
        let lines = wrap(chain(), long, 10.0, 30.0);
        assert!(lines.len() > 2);
        assert_lines_ok(long, 10.0, 30.0, &lines);
        assert!(wrap(chain(), "", 10.0, 30.0).is_empty());
    }

    #[test]
    fn fit_shrinks_before_overflowing() {
        let text = ADDRESS;
        let at_10 = wrap(chain(), text, 10.0, 96.0).len();
        let fitted = fit(chain(), text, 10.0, 6.0, 96.0, at_10 - 1);
        assert!(!fitted.overflow);
        assert!(fitted.size_pt < 10.0 && fitted.size_pt >= 6.0);
        assert!(fitted.lines.len() < at_10);
        // One half-point step larger would not have fitted.
        let larger = fitted.size_pt + FIT_STEP_PT;
        assert!(wrap(chain(), text, larger, 96.0).len() > at_10 - 1);

        // Text that fits at the start size is not shrunk.
        let short = fit(chain(), "王𠮷明", 10.0, 6.0, 96.0, 1);
        assert_eq!((short.size_pt, short.overflow), (10.0, false));

        // Too much text overflows at the minimum size, with every line kept.
        let huge = ADDRESS.repeat(10);
        let over = fit(chain(), &huge, 10.0, 6.0, 96.0, 3);
        assert!(over.overflow);
        assert_eq!(over.size_pt, 6.0);
        assert_lines_ok(&huge, 6.0, 96.0, &over.lines);
    }

    #[test]
    fn a_300_character_address_fits_a_96_by_30_box_or_overflows() {
        let address: String = ADDRESS.chars().cycle().take(300).collect();
        let fitted = fit_box(chain(), &address, 10.0, 6.0, 96.0, 30.0);
        assert!(fitted.size_pt >= 6.0 && fitted.size_pt <= 10.0);
        assert_lines_ok(&address, fitted.size_pt, 96.0, &fitted.lines);
        let fits = fitted.lines.len() <= lines_in_height(30.0, fitted.size_pt);
        assert_eq!(fitted.overflow, !fits);
        // At 6 pt a 96 mm line holds about 45 hanzi and 30 mm holds 11 lines,
        // so 300 characters must fit without overflow.
        assert!(!fitted.overflow, "{fitted:?}");

        // The fixed-line-count form: 5 lines of 96 mm at ≥ 6 pt cannot hold it.
        let fixed = fit(chain(), &address, 10.0, 6.0, 96.0, 5);
        assert!(fixed.overflow);
        assert!(fixed.lines.len() > 5);
    }

    #[test]
    fn the_cache_is_consistent_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| chain().width_mm(ADDRESS, 9.0)))
            .collect();
        let widths: Vec<f32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]));
    }
}
