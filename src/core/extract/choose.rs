//! Choosing the main content: a semantic scope (`<main>`, `[role=main]`, a
//! dominant `<article>`), then a readability-like score over paragraphs
//! credited to their ancestors, discounted by link density.

use super::*;

/// The subtrees that hold the main content, in document order.
pub(super) struct Chosen {
    pub(super) roots: Vec<u32>,
}

/// Finds the main content: a semantic scope first, then a readability-like
/// score inside it.
pub(super) fn choose_content(flat: &Flat<'_>, stats: &[Stats]) -> Chosen {
    let body = flat.body as usize;
    let scope = semantic_scope(flat, stats).unwrap_or(body);
    let scope_end = flat.nodes[scope].end as usize;

    // Score: every paragraph-like node credits its ancestors.
    let mut score = vec![f32::NAN; flat.nodes.len()];
    let mut scored = Vec::new();
    for (node, s) in flat.nodes[..scope_end].iter().zip(stats).skip(scope) {
        let paragraph_like = match node.tag {
            Tag::P | Tag::Pre | Tag::Quote | Tag::Dd => true,
            Tag::Cell | Tag::Block | Tag::Li => s.blocks == 1,
            _ => false,
        };
        // Boilerplate has no text in `stats`, so it never scores.
        if !paragraph_like || s.text < 25 {
            continue;
        }
        let credit = 1.0 + s.commas as f32 + (s.text as f32 / 100.0).floor().min(3.0);
        let mut ancestor = node.parent;
        let mut level = 0u32;
        while ancestor != u32::MAX && level < 5 {
            let a = ancestor as usize;
            if a < scope {
                break;
            }
            if score[a].is_nan() {
                score[a] = initial_score(&flat.nodes[a]);
                scored.push(a);
            }
            let divider = match level {
                0 => 1.0,
                1 => 2.0,
                _ => level as f32 * 3.0,
            };
            score[a] += credit / divider;
            ancestor = flat.nodes[a].parent;
            level += 1;
        }
    }
    for &c in &scored {
        score[c] *= 1.0 - stats[c].link_density();
    }
    scored.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let Some(&best) = scored.first() else {
        return Chosen {
            roots: vec![scope as u32],
        };
    };
    let mut top = best;

    // Several strong candidates sharing an ancestor: the ancestor is the content.
    let strong: Vec<usize> = scored
        .iter()
        .skip(1)
        .take(4)
        .copied()
        .filter(|&c| score[c] >= score[best] * 0.75)
        .collect();
    if strong.len() >= 2 {
        let mut ancestor = flat.nodes[top].parent;
        while ancestor != u32::MAX && ancestor as usize >= scope {
            let a = ancestor as usize;
            let end = flat.nodes[a].end as usize;
            let inside = strong.iter().filter(|&&c| c > a && c < end).count();
            if inside >= 2 {
                top = a;
                break;
            }
            if a == scope {
                break;
            }
            ancestor = flat.nodes[a].parent;
        }
    }

    // Climb while the parent scores about as well: the content is split
    // across sibling containers.
    let mut last = score[top];
    let threshold = last / 3.0;
    let mut parent = flat.nodes[top].parent;
    while parent != u32::MAX && parent as usize >= scope && parent as usize != body {
        let p = parent as usize;
        if score[p].is_nan() {
            parent = flat.nodes[p].parent;
            continue;
        }
        if score[p] < threshold {
            break;
        }
        if score[p] > last {
            top = p;
            break;
        }
        last = score[p];
        parent = flat.nodes[p].parent;
    }

    // An only child says nothing its parent does not.
    while top > scope {
        let p = flat.nodes[top].parent as usize;
        let live = flat
            .children(p)
            .filter(|&c| !flat.is_junk(c, false) && stats[c].text > 0)
            .count();
        if live == 1 && p != body {
            top = p;
        } else {
            break;
        }
    }

    if top == scope || holds_too_little(flat, stats, scope, top) {
        return Chosen {
            roots: vec![scope as u32],
        };
    }

    // Siblings that look like more of the same.
    let top_score = if score[top].is_nan() { 0.0 } else { score[top] };
    let threshold = (top_score * 0.2).max(10.0);
    let parent = flat.nodes[top].parent as usize;
    let live: Vec<usize> = flat
        .children(parent)
        .filter(|&c| c == top || (!flat.is_junk(c, false) && stats[c].text > 0))
        .collect();
    // The page's own heading usually sits just before the content container,
    // perhaps with a dateline between: keep headings in that lead-in.
    let top_at = live.iter().position(|&c| c == top).unwrap_or(0);
    let lead_in = live[..top_at]
        .iter()
        .rev()
        .take_while(|&&c| matches!(flat.nodes[c].tag, Tag::Heading(_)) || stats[c].text < 80)
        .count();
    let lead_in = &live[top_at - lead_in..top_at];
    let mut roots = Vec::new();
    for &sibling in &live {
        if sibling == top
            || (lead_in.contains(&sibling) && matches!(flat.nodes[sibling].tag, Tag::Heading(_)))
        {
            roots.push(sibling as u32);
            continue;
        }
        let node = &flat.nodes[sibling];
        let bonus = if node.class_hash != 0 && node.class_hash == flat.nodes[top].class_hash {
            top_score * 0.2
        } else {
            0.0
        };
        let s = &stats[sibling];
        let own = if score[sibling].is_nan() {
            0.0
        } else {
            score[sibling]
        };
        let include = if own + bonus >= threshold {
            true
        } else if matches!(node.tag, Tag::P | Tag::List | Tag::Heading(_)) {
            let density = s.link_density();
            (s.text > 80 && density < 0.25)
                || (s.text > 0
                    && density == 0.0
                    && matches!(flat.last_char(sibling), Some('.' | ':' | '!' | '?')))
        } else {
            false
        };
        if include {
            roots.push(sibling as u32);
        }
    }
    Chosen { roots }
}

/// Whether the best container inside a page's own `<main>` holds too little
/// of it to be the content: then `<main>` is. A page whose body is a list
/// of links (a collection, a news front page) scores its few paragraphs, a
/// lead or a change history, highest; taking the whole scope keeps the
/// links and keeps the choice the same from one version to the next.
fn holds_too_little(flat: &Flat<'_>, stats: &[Stats], scope: usize, top: usize) -> bool {
    let node = &flat.nodes[scope];
    (node.tag == Tag::Main || node.flags & MAIN_ROLE != 0)
        && stats[top].text * 2 < stats[scope].text
}

/// `<main>`, `[role=main]` or a dominant `<article>`, when it holds enough
/// text to be the page rather than a fragment of it.
pub(super) fn semantic_scope(flat: &Flat<'_>, stats: &[Stats]) -> Option<usize> {
    let body = flat.body as usize;
    let total = stats[body].text.max(1);
    let mut best_main: Option<usize> = None;
    let mut articles: Vec<usize> = Vec::new();
    let mut i = body;
    let end = flat.nodes[body].end as usize;
    while i < end {
        let node = &flat.nodes[i];
        if flat.is_junk(i, false) {
            i = node.end as usize;
            continue;
        }
        if node.tag == Tag::Main || node.flags & MAIN_ROLE != 0 {
            if best_main.is_none_or(|m| stats[i].text > stats[m].text) {
                best_main = Some(i);
            }
        } else if node.tag == Tag::Article {
            articles.push(i);
            // Nested articles (comments) belong to this one.
            i = node.end as usize;
            continue;
        }
        i += 1;
    }
    if let Some(m) = best_main
        && stats[m].text >= 200
        && stats[m].text * 5 >= total
    {
        return Some(m);
    }
    let article_total: u32 = articles.iter().map(|&a| stats[a].text).sum();
    let best = articles.iter().copied().max_by_key(|&a| stats[a].text)?;
    if stats[best].text >= 300 && stats[best].text * 10 >= article_total * 6 {
        Some(best)
    } else {
        None
    }
}

/// A candidate's starting score from what it is (readability's weights).
pub(super) fn initial_score(node: &FlatNode<'_>) -> f32 {
    let base = match node.tag {
        Tag::Block | Tag::Main | Tag::Article => 5.0,
        Tag::Pre | Tag::Cell | Tag::Quote => 3.0,
        Tag::List | Tag::Li | Tag::Dd | Tag::Dt | Tag::Form => -3.0,
        Tag::Heading(_) => -5.0,
        _ => 0.0,
    };
    base + f32::from(node.weight)
}

/// How the emitter prunes inside a chosen subtree.
pub(super) enum Cleaning<'s> {
    /// Keep everything (no main-content mode, or explicit `select`).
    None,
    /// Drop boilerplate and link farms, judged on these statistics.
    Conditional(&'s [Stats]),
}

/// Whether a container inside the main content is a link farm or other
/// non-content (readability's "clean conditionally", tuned to keep lists of
/// organisations and places).
pub(super) fn is_link_farm(flat: &Flat<'_>, stats: &[Stats], i: usize) -> bool {
    let node = &flat.nodes[i];
    let s = &stats[i];
    let weight = i32::from(node.weight);
    match node.tag {
        Tag::Form => return true,
        Tag::List => {
            let density = s.link_density();
            if s.text == 0 {
                return false;
            }
            if weight < 0 && density > 0.3 {
                return true;
            }
            if density <= 0.5 {
                return false;
            }
            // A mostly-linked list: keep it when the page introduces it
            // ("Members include:") or its items are short names rather than
            // headlines of other pages.
            if introduced(flat, i) {
                return false;
            }
            let items = s.li.max(1);
            let per_item = s.text / items;
            return per_item > 45 || s.li < 2;
        }
        Tag::Block | Tag::Table => {}
        _ => return false,
    }
    // A wrapper around a single list is judged as that list: a rebuild that
    // wraps "Members include:" lists in new divs must not drop them.
    let mut live = flat.children(i).filter(|&c| stats[c].text > 0);
    if let (Some(only), None) = (live.next(), live.next())
        && flat.nodes[only].tag == Tag::List
    {
        return is_link_farm(flat, stats, only);
    }
    if s.commas >= 10 {
        return false;
    }
    if s.text == 0 {
        return false;
    }
    // A lone link in a box of its own ("View this dataset", "Download the
    // plan") is part of the content it sits in: its disappearing is news.
    if s.blocks == 1 && s.li == 0 && s.text <= 40 && s.link == s.text && s.img == 0 {
        return false;
    }
    let density = s.link_density();
    let p = s.p;
    if s.img > 1 && (p as f32) / (s.img as f32) < 0.5 && s.text < 200 {
        return true;
    }
    if s.input > p / 3 + 1 {
        return true;
    }
    if s.embed > 1 && s.text < 75 {
        return true;
    }
    // A teaser (a headline link over its own summary sentence) is a news
    // listing's content: a new item there is news, unlike a menu.
    if s.li == 0 && s.text - s.link >= 80 && density <= 0.6 {
        return false;
    }
    if weight < 25 && density > 0.33 && s.text < 1_000 {
        return true;
    }
    if weight >= 25 && density > 0.5 {
        return true;
    }
    false
}

/// Whether the text just before list `i` introduces it ("... include:").
pub(super) fn introduced(flat: &Flat<'_>, i: usize) -> bool {
    let parent = flat.nodes[i].parent;
    if parent == u32::MAX {
        return false;
    }
    let mut previous = None;
    for child in flat.children(parent as usize) {
        if child == i {
            break;
        }
        previous = Some(child);
    }
    // Loose text right before the list counts too: check the nodes between.
    let start = previous.map_or(parent as usize + 1, |p| p);
    let last = flat.nodes[start..i]
        .iter()
        .rev()
        .filter(|n| n.tag == Tag::Text)
        .find_map(|n| n.text.trim_end().chars().last());
    // A list right under a heading is that section's body ("COVID-19
    // testing" over links to each test's instructions), not a menu.
    matches!(last, Some(':'))
        || previous.is_some_and(|p| matches!(flat.nodes[p].tag, Tag::Heading(2..)))
}
