//! The buyer's delivery instructions inside an address line.
//!
//! Buyers type instructions into the address: "科技园路32号2502室（放快递柜）",
//! "幸福街468号15层，送货前请电话联系". On a waybill the courier needs the
//! address; when the whole line does not fit the address box even at its
//! smallest size, a template can print the address without the instructions
//! (`fallback`, see `templates/README.md`) and the packing slip carries them.

/// Words that start an instruction clause after a comma: "，送货前…", "，请放…".
const MARKERS: &[&str] = &[
    "送货",
    "送到",
    "请",
    "麻烦",
    "放",
    "不要",
    "勿",
    "务必",
    "到了",
    "到达",
    "电话",
    "电联",
    "联系",
    "打电话",
    "周末",
    "工作日",
    "上班",
    "下班",
    "快递",
    "代收",
    "敲门",
    "门口",
    "前台",
    "驿站",
    "自提",
    "谢谢",
];

/// Characters that end a clause.
fn is_break(c: char) -> bool {
    matches!(c, '，' | ',' | '；' | ';' | '。' | '、' | ' ' | '　')
}

fn closer_of(open: char) -> Option<char> {
    match open {
        '（' => Some('）'),
        '(' => Some(')'),
        '【' => Some('】'),
        '[' => Some(']'),
        _ => None,
    }
}

/// The address without its trailing instructions, and the instructions: text
/// in brackets at the end, and a clause after a comma that starts with an
/// instruction word. `None` when there are none (or when nothing of an address
/// would be left).
pub fn split_instructions(address: &str) -> (&str, Option<&str>) {
    let text = address.trim();
    let mut end = text.len();
    // A trailing bracket group, as many as there are: "…2502室（放门口）【勿电】".
    loop {
        let head = text[..end].trim_end();
        let Some(last) = head.chars().last() else {
            break;
        };
        let Some(open_at) = head
            .char_indices()
            .rev()
            .find_map(|(i, c)| closer_of(c).filter(|&close| close == last).map(|_| i))
        else {
            break;
        };
        if head[..open_at].trim().is_empty() {
            break;
        }
        end = open_at;
    }
    // The first clause that starts with an instruction word.
    let head = &text[..end];
    let mut cut = None;
    for (i, c) in head.char_indices() {
        if !is_break(c) {
            continue;
        }
        let rest = head[i + c.len_utf8()..].trim_start();
        if MARKERS.iter().any(|m| rest.starts_with(m)) {
            cut = Some(i);
            break;
        }
    }
    if let Some(i) = cut {
        end = i;
    }
    let core = text[..end].trim_end_matches(|c: char| is_break(c) || c.is_whitespace());
    if end == text.len() || core.chars().count() < 4 {
        return (text, None);
    }
    let note = text[end..].trim_start_matches(|c: char| is_break(c) || c.is_whitespace());
    if note.is_empty() {
        return (text, None);
    }
    (core, Some(note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_split_off_the_end_of_an_address() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "科技园路32号2502室（放快递柜）",
                "科技园路32号2502室",
                Some("（放快递柜）"),
            ),
            (
                "幸福街468号15层，送货前请电话联系",
                "幸福街468号15层",
                Some("送货前请电话联系"),
            ),
            (
                "幸福街468号15层, 请放门口（周末不在家）",
                "幸福街468号15层",
                Some("请放门口（周末不在家）"),
            ),
            (
                "文一西路969号3号楼(北门)【勿电】",
                "文一西路969号3号楼",
                Some("(北门)【勿电】"),
            ),
            // Nothing to split: brackets inside, a comma before more address.
            ("人民路(近地铁站)88号", "人民路(近地铁站)88号", None),
            ("和平路1号，3号楼2单元", "和平路1号，3号楼2单元", None),
            ("Room 1502, Building B", "Room 1502, Building B", None),
            // Too little address would be left: keep it whole.
            ("（放门口）", "（放门口）", None),
            ("1号（放门口）", "1号（放门口）", None),
            ("", "", None),
        ];
        for (input, core, note) in cases {
            assert_eq!(split_instructions(input), (*core, *note), "{input:?}");
        }
    }

    #[test]
    fn nothing_is_lost_in_the_split() {
        for input in [
            "科技园路32号2502室（放快递柜）",
            "幸福街468号15层，送货前请电话联系",
            "长江路100号 麻烦放驿站，谢谢",
        ] {
            let (core, note) = split_instructions(input);
            let joined: String = format!("{core}{}", note.unwrap_or(""))
                .chars()
                .filter(|c| !is_break(*c))
                .collect();
            let all: String = input.chars().filter(|c| !is_break(*c)).collect();
            assert_eq!(joined, all, "{input:?}");
        }
    }
}
