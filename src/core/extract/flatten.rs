//! Flattening: one walk of the DOM into a pre-order array, flagging
//! boilerplate without dropping it, then one bottom-up pass of statistics so
//! that every later question about a subtree is O(1).

use scraper::{ElementRef, Html, Node};

use super::*;

/// Boilerplate flags on a node.
pub(super) const JUNK_HARD: u8 = 1; // chrome by tag, role, hidden: never content
pub(super) const JUNK_CLASS: u8 = 2; // chrome by class or id: a guess the fallback may overrule
pub(super) const IN_LINK: u8 = 4;
pub(super) const SELECTED: u8 = 8;
pub(super) const MAIN_ROLE: u8 = 16;
pub(super) const CLASS_OWN: u8 = 32; // JUNK_CLASS because of this element's own names

/// One node of the flattened tree.
#[derive(Debug)]
pub(super) struct FlatNode<'a> {
    pub(super) tag: Tag,
    /// The text of a text node; empty for elements.
    pub(super) text: &'a str,
    pub(super) parent: u32,
    /// One past the last node of this node's subtree.
    pub(super) end: u32,
    pub(super) flags: u8,
    /// Readability-style class weight: -25, 0 or +25 (or their sum).
    pub(super) weight: i8,
    /// Hash of the class attribute, to find siblings styled like the content.
    pub(super) class_hash: u32,
    /// A text node's non-whitespace characters and commas, counted once
    /// when the tree is flattened (every measuring pass reads them); zero
    /// for elements and for text that is never content (`JUNK_HARD`).
    pub(super) chars: u32,
    pub(super) commas: u32,
}

/// The page as a pre-ordered array, with per-node facts gathered on the way.
pub(super) struct Flat<'a> {
    pub(super) nodes: Vec<FlatNode<'a>>,
    pub(super) body: u32,
    pub(super) title: Option<String>,
}

impl<'a> Flat<'a> {
    pub(super) fn build(
        document: &'a Html,
        rules: &Rules,
        deadline: std::time::Instant,
    ) -> Result<Self, ExtractError> {
        let chrome = rules.finds_main_content();
        let mut nodes: Vec<FlatNode<'a>> = Vec::with_capacity(4096);
        // The first <title> in document order is the page's: html5ever puts
        // it in <head>, ahead of any <title> inside inline SVG.
        let title = document
            .select(&TITLE)
            .next()
            .map(|element| normalise(&element.text().collect::<String>()))
            .filter(|text| !text.is_empty());
        let mut select_hits = vec![0usize; rules.select.len()];
        // What the class and id patterns say of each distinct name on the
        // page: pages repeat the same few class names on most elements.
        let mut names = NameVerdicts::with_capacity();
        // Open elements: (flat index, inherited flags).
        let mut open: Vec<(u32, u8)> = Vec::with_capacity(64);
        let mut body = None;

        let root = document.tree.root();
        let mut cur = match root.first_child() {
            Some(child) => child,
            None => {
                return Ok(Self::empty());
            }
        };
        loop {
            // The clock is read every few thousand nodes: often enough to
            // stop a slow page, rarely enough to cost nothing.
            if nodes.len() % 4096 == 4095 && std::time::Instant::now() > deadline {
                return Err(ExtractError::OutOfTime {
                    limit: rules.budget.deadline,
                });
            }
            let mut descend = false;
            let parent = open.last().map_or(u32::MAX, |&(idx, _)| idx);
            let inherited = open.last().map_or(0, |&(_, flags)| flags);
            match cur.value() {
                // Text outside any element (before <html>) is not page text.
                Node::Text(text) if parent != u32::MAX => {
                    let flags = inherited & (JUNK_HARD | JUNK_CLASS | IN_LINK);
                    let (chars, commas) = if flags & JUNK_HARD == 0 {
                        count_text(&text.text)
                    } else {
                        (0, 0)
                    };
                    nodes.push(FlatNode {
                        tag: Tag::Text,
                        text: &text.text,
                        parent,
                        end: nodes.len() as u32 + 1,
                        flags,
                        weight: 0,
                        class_hash: 0,
                        chars,
                        commas,
                    });
                }
                Node::Element(element) => {
                    let name = element.name();
                    let element_ref = ElementRef::wrap(cur).expect("element node");
                    let excluded = never_text(name)
                        || rules
                            .exclude
                            .iter()
                            .any(|(_, selector)| selector.matches(&element_ref));
                    if !excluded {
                        let mut tag = Tag::of(name);
                        let mut flags = inherited & (JUNK_HARD | JUNK_CLASS | IN_LINK);
                        if tag == Tag::A {
                            flags |= IN_LINK;
                        }
                        for (hit, (_, selector)) in select_hits.iter_mut().zip(&rules.select) {
                            if selector.matches(&element_ref) {
                                *hit += 1;
                                flags |= SELECTED;
                            }
                        }
                        let (weight, class_hash, own) =
                            inspect_attrs(element, &mut tag, chrome, &mut names, || {
                                first_text(&element_ref)
                            });
                        flags |= own;
                        if chrome && chrome_tag(name) && tag != Tag::Main {
                            flags |= JUNK_HARD;
                        }
                        // Figures are pictures and their captions, but
                        // sometimes a big table: a guess the page can overrule.
                        if chrome && name == "figure" {
                            flags |= JUNK_CLASS | CLASS_OWN;
                        }
                        let idx = nodes.len() as u32;
                        if tag == Tag::Body && body.is_none() {
                            body = Some(idx);
                        }
                        nodes.push(FlatNode {
                            tag,
                            text: "",
                            parent,
                            end: idx + 1,
                            flags,
                            weight,
                            class_hash,
                            chars: 0,
                            commas: 0,
                        });
                        // Only boilerplate and link flags pass to the subtree.
                        open.push((idx, flags & (JUNK_HARD | JUNK_CLASS | IN_LINK)));
                        descend = true;
                    }
                }
                _ => {}
            }
            if descend && let Some(child) = cur.first_child() {
                cur = child;
                continue;
            }
            if descend {
                close(&mut open, &mut nodes);
            }
            // Climb until a next sibling exists.
            loop {
                if let Some(next) = cur.next_sibling() {
                    cur = next;
                    break;
                }
                match cur.parent() {
                    Some(up) if up.id() != root.id() => {
                        cur = up;
                        // Only opened elements have children that were visited,
                        // so climbing out of one closes the innermost open element.
                        close(&mut open, &mut nodes);
                    }
                    _ => {
                        while !open.is_empty() {
                            close(&mut open, &mut nodes);
                        }
                        let body = body.unwrap_or(0);
                        for (hits, (selector, _)) in select_hits.iter().zip(&rules.select) {
                            if *hits == 0 {
                                return Err(ExtractError::SelectorMatchedNothing {
                                    selector: selector.clone(),
                                });
                            }
                        }
                        if nodes.is_empty() {
                            return Ok(Self {
                                title,
                                ..Self::empty()
                            });
                        }
                        return Ok(Self { nodes, body, title });
                    }
                }
            }
        }

        /// Closes the innermost open element: its subtree ends here.
        fn close(open: &mut Vec<(u32, u8)>, nodes: &mut [FlatNode<'_>]) {
            if let Some((idx, _)) = open.pop() {
                let end = nodes.len() as u32;
                nodes[idx as usize].end = end;
            }
        }
    }

    pub(super) fn empty() -> Self {
        Self {
            nodes: vec![FlatNode {
                tag: Tag::Body,
                text: "",
                parent: u32::MAX,
                end: 1,
                flags: 0,
                weight: 0,
                class_hash: 0,
                chars: 0,
                commas: 0,
            }],
            body: 0,
            title: None,
        }
    }

    /// Overrules class-based boilerplate guesses on wrappers that hold much
    /// of the page or its `<main>` / `<article>`: a `class="has-sidebar"` on a
    /// page wrapper must not wipe the page.
    pub(super) fn settle_class_junk(&mut self) {
        if !self.nodes.iter().any(|n| n.flags & CLASS_OWN != 0) {
            return;
        }
        let all = self.measure(true);
        let body_text = all[self.body as usize].text;
        for (node, s) in self.nodes.iter_mut().zip(&all) {
            if node.flags & CLASS_OWN != 0 && (s.text * 10 > body_text * 4 || s.semantic > 0) {
                node.flags &= !CLASS_OWN;
            }
        }
        for i in 0..self.nodes.len() {
            let parent = self.nodes[i].parent;
            let inherited = if parent == u32::MAX {
                false
            } else {
                self.nodes[parent as usize].flags & JUNK_CLASS != 0
            };
            let node = &mut self.nodes[i];
            if inherited || node.flags & CLASS_OWN != 0 {
                node.flags |= JUNK_CLASS;
            } else {
                node.flags &= !JUNK_CLASS;
            }
        }
    }

    /// The outermost nodes matched by a `select` selector, in document order.
    pub(super) fn selected_roots(&self) -> Vec<u32> {
        let mut roots = Vec::new();
        let mut i = 0;
        while i < self.nodes.len() {
            if self.nodes[i].flags & SELECTED != 0 {
                roots.push(i as u32);
                i = self.nodes[i].end as usize;
            } else {
                i += 1;
            }
        }
        roots
    }

    /// Whether node `i` is boilerplate.
    pub(super) fn is_junk(&self, i: usize, lenient: bool) -> bool {
        let flags = self.nodes[i].flags;
        flags & JUNK_HARD != 0 || (!lenient && flags & JUNK_CLASS != 0)
    }

    /// Sums per-subtree statistics bottom-up, leaving boilerplate out.
    pub(super) fn measure(&self, lenient: bool) -> Vec<Stats> {
        let mut stats = vec![Stats::default(); self.nodes.len()];
        for i in (0..self.nodes.len()).rev() {
            let node = &self.nodes[i];
            if self.is_junk(i, lenient) {
                continue;
            }
            match node.tag {
                Tag::Text => {
                    let (chars, commas) = (node.chars, node.commas);
                    let s = &mut stats[i];
                    s.text = chars;
                    s.commas = commas;
                    if node.flags & IN_LINK != 0 {
                        s.link = chars;
                    }
                }
                Tag::P => stats[i].p += 1,
                Tag::Li => stats[i].li += 1,
                Tag::Img => stats[i].img += 1,
                Tag::Embed => stats[i].embed += 1,
                Tag::Input => stats[i].input += 1,
                Tag::Heading(_) => stats[i].headings += 1,
                Tag::Main | Tag::Article => stats[i].semantic += 1,
                _ => {}
            }
            if node.tag.is_block() {
                stats[i].blocks += 1;
            }
            if node.parent != u32::MAX {
                let s = stats[i];
                let p = &mut stats[node.parent as usize];
                p.text += s.text;
                p.link += s.link;
                p.commas += s.commas;
                p.p += s.p;
                p.li += s.li;
                p.img += s.img;
                p.embed += s.embed;
                p.input += s.input;
                p.headings += s.headings;
                p.semantic += s.semantic;
                p.blocks += s.blocks;
                if matches!(node.tag, Tag::Heading(_)) {
                    p.heading_text += s.text;
                } else {
                    p.heading_text += s.heading_text;
                }
            }
        }
        stats
    }

    /// The last non-whitespace character of node `i`'s text.
    pub(super) fn last_char(&self, i: usize) -> Option<char> {
        let end = self.nodes[i].end as usize;
        self.nodes[i..end]
            .iter()
            .rev()
            .filter(|n| n.tag == Tag::Text)
            .find_map(|n| n.text.trim_end().chars().last())
    }

    /// Element children of node `i`.
    pub(super) fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.nodes[i].end as usize;
        let mut next = i + 1;
        std::iter::from_fn(move || {
            while next < end {
                let child = next;
                next = self.nodes[child].end as usize;
                if self.nodes[child].tag != Tag::Text {
                    return Some(child);
                }
            }
            None
        })
    }
}

/// The first bit of text inside an element, to recognise skip links.
pub(super) fn first_text(element: &ElementRef<'_>) -> String {
    let mut out = String::new();
    for piece in element.text() {
        out.push_str(piece);
        if out.len() > 40 {
            break;
        }
    }
    out
}

/// Reads an element's attributes once: class weight, class hash, and flags
/// for hidden or chrome-like elements. Turns `role="heading"` elements into
/// headings of their `aria-level` (2 when absent, as ARIA says).
pub(super) fn inspect_attrs<'a>(
    element: &'a scraper::node::Element,
    tag: &mut Tag,
    chrome: bool,
    names: &mut NameVerdicts<'a>,
    text: impl FnOnce() -> String,
) -> (i8, u32, u8) {
    let mut heading_role = false;
    let mut level = 2u8;
    let mut class = "";
    let mut id = "";
    let mut flags = 0u8;
    let mut label = "";
    let mut href = "";
    for (name, value) in element.attrs() {
        match name {
            "class" => class = value,
            "id" => id = value,
            "role" => {
                if value.eq_ignore_ascii_case("main") {
                    flags |= MAIN_ROLE;
                } else if chrome && chrome_role(value) {
                    flags |= JUNK_HARD;
                } else if value.trim().eq_ignore_ascii_case("heading") {
                    heading_role = true;
                }
            }
            "aria-level" => {
                level = value.trim().parse::<u8>().map_or(2, |l| l.clamp(1, 6));
            }
            "hidden" if chrome => flags |= JUNK_HARD,
            "aria-hidden" if chrome && value.trim().eq_ignore_ascii_case("true") => {
                flags |= JUNK_HARD;
            }
            "style" if chrome && style_hides(value) => flags |= JUNK_HARD,
            "aria-label" => label = value,
            "href" => href = value,
            _ => {}
        }
    }
    if heading_role {
        *tag = Tag::Heading(level);
    }
    let tag = *tag;
    if class.is_empty() && id.is_empty() && label.is_empty() && tag != Tag::A {
        return (0, 0, flags);
    }
    let mut weight = 0i8;
    let mut class_hash = 0u32;
    if !class.is_empty() {
        class_hash = class.bytes().fold(2_166_136_261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16_777_619)
        });
    }
    if chrome {
        let protected = matches!(tag, Tag::Body | Tag::Main | Tag::Article)
            || element.name() == "html"
            || flags & MAIN_ROLE != 0;
        for name in [class, id] {
            if name.is_empty() {
                continue;
            }
            let verdict = names.of(name);
            if verdict & POSITIVE_NAME != 0 {
                weight = weight.saturating_add(25);
            }
            if verdict & NEGATIVE_NAME != 0 {
                weight = weight.saturating_sub(25);
            }
            if !protected && verdict & (CHROME_WORD | UNLIKELY_NAME) != 0 {
                flags |= JUNK_CLASS | CLASS_OWN;
            }
        }
        if !protected && !label.is_empty() && names.of(label) & CHROME_WORD != 0 {
            flags |= JUNK_HARD;
        }
        if tag == Tag::A && href.starts_with('#') && is_skip_text(&text()) {
            flags |= JUNK_HARD;
        }
    }
    (weight, class_hash, flags)
}

/// What the class and id patterns say of a name: bits of [`NameVerdicts`].
const POSITIVE_NAME: u8 = 1; // POSITIVE matches
const NEGATIVE_NAME: u8 = 2; // NEGATIVE matches
const CHROME_WORD: u8 = 4; // CHROME_NAME matches
const UNLIKELY_NAME: u8 = 8; // UNLIKELY matches and MAYBE_CONTENT does not

/// The class and id patterns' verdicts on each distinct name of one page,
/// so that each pattern runs once per name rather than once per element.
#[derive(Default)]
pub(super) struct NameVerdicts<'a> {
    seen: std::collections::HashMap<&'a str, u8>,
}

/// Distinct names remembered per thread across pages before the memory
/// starts again: a site's pages share their class names, so most pages
/// find every name here, while a crawl of many sites cannot grow it
/// without bound.
const REMEMBERED_NAMES: usize = 4096;

thread_local! {
    /// The verdicts on names met on earlier pages read by this thread. The
    /// patterns are fixed, so a verdict never goes stale; running them was
    /// about 2 % of reading a page.
    static REMEMBERED: std::cell::RefCell<std::collections::HashMap<Box<str>, u8>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Distinct class and id names a page is given room for at once: a page
/// has some dozens to a few hundred, and growing the map from empty
/// rehashed it five or six times per page.
const PAGE_NAMES: usize = 256;

impl<'a> NameVerdicts<'a> {
    fn with_capacity() -> Self {
        Self {
            seen: std::collections::HashMap::with_capacity(PAGE_NAMES),
        }
    }

    fn of(&mut self, name: &'a str) -> u8 {
        *self.seen.entry(name).or_insert_with(|| {
            REMEMBERED.with_borrow_mut(|remembered| {
                if let Some(&verdict) = remembered.get(name) {
                    return verdict;
                }
                let verdict = name_verdict(name);
                if remembered.len() >= REMEMBERED_NAMES {
                    remembered.clear();
                }
                remembered.insert(name.into(), verdict);
                verdict
            })
        })
    }
}

/// What the class and id patterns say of `name`: bits of [`NameVerdicts`].
fn name_verdict(name: &str) -> u8 {
    let mut verdict = 0;
    if POSITIVE.is_match(name) {
        verdict |= POSITIVE_NAME;
    }
    if NEGATIVE.is_match(name) {
        verdict |= NEGATIVE_NAME;
    }
    if CHROME_NAME.is_match(name) {
        verdict |= CHROME_WORD;
    }
    if UNLIKELY.is_match(name) && !MAYBE_CONTENT.is_match(name) {
        verdict |= UNLIKELY_NAME;
    }
    verdict
}

/// Per-subtree sums, boilerplate left out.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Stats {
    /// Non-whitespace characters of text.
    pub(super) text: u32,
    /// Of which inside links.
    pub(super) link: u32,
    /// Of which inside headings.
    pub(super) heading_text: u32,
    pub(super) commas: u32,
    pub(super) p: u32,
    pub(super) li: u32,
    pub(super) img: u32,
    pub(super) embed: u32,
    pub(super) input: u32,
    pub(super) headings: u32,
    /// `<main>` and `<article>` elements.
    pub(super) semantic: u32,
    /// Block-level elements, this one included.
    pub(super) blocks: u32,
}

impl Stats {
    pub(super) fn link_density(&self) -> f32 {
        if self.text == 0 {
            0.0
        } else {
            self.link as f32 / self.text as f32
        }
    }
}

/// Non-whitespace characters and commas (`,`, `、`, `，`) in a text node.
fn count_text(text: &str) -> (u32, u32) {
    let (mut chars, mut commas) = (0u32, 0u32);
    if text.is_ascii() {
        // The whitespace `char::is_whitespace` knows in ASCII: tab to
        // carriage return, and space. Counted in byte-wide counters over
        // runs short enough not to overflow them, without a branch per
        // byte, so that the compiler counts 16 bytes at a time.
        for run in text.as_bytes().chunks(255) {
            let (run_chars, run_commas) = run.iter().fold((0u8, 0u8), |(c, k), &b| {
                let space = (b == b' ') | (b.wrapping_sub(b'\t') <= b'\r' - b'\t');
                (c + u8::from(!space), k + u8::from(b == b','))
            });
            chars += u32::from(run_chars);
            commas += u32::from(run_commas);
        }
        return (chars, commas);
    }
    for c in text.chars() {
        if !c.is_whitespace() {
            chars += 1;
            if c == ',' || c == '\u{3001}' || c == '\u{ff0c}' {
                commas += 1;
            }
        }
    }
    (chars, commas)
}

#[cfg(test)]
mod tests {
    use super::count_text;

    #[test]
    fn ascii_counts_match_the_unicode_reading() {
        let slow = |text: &str| {
            let chars = text.chars().filter(|c| !c.is_whitespace()).count() as u32;
            let commas = text
                .chars()
                .filter(|c| matches!(c, ',' | '、' | '，'))
                .count() as u32;
            (chars, commas)
        };
        for text in [
            "",
            "  \t\n\r\x0b\x0c ",
            "Carlisle, Eden, Allerdale",
            "a\x1cb\x7f,",
            "Penrith\u{a0}and Eden, 52,630",
            "东京、大阪，名古屋",
        ] {
            assert_eq!(count_text(text), slow(text), "{text:?}");
        }
    }
}
