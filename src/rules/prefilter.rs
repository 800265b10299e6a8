//! The per-message prefilter: every subject/body regex and `contains` text of every rule is
//! searched once per message (regex sets and one Aho-Corasick automaton per target), and every
//! `from` glob is looked up by address and domain; rules then read their answers by slot.
//! This keeps a thousand rules close to the cost of ten.
//!
//! A regex that cannot match without a literal of its own (`Результат:` in
//! `(?m)^\s*Результат:`) is not put into a set: one automaton finds every such literal in one
//! pass, and only the regexes whose literal occurs run. A set walks every byte of the text with
//! its lazy DFA (27 instructions a byte on a Cyrillic body); the automaton skips to the rare
//! bytes of its literals.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexSet, RegexSetBuilder};
use regex_syntax::hir::{Hir, HirKind};

use super::condition::Facts;
use super::glob::{Glob, GlobKey};
use super::model::{Condition, Rule, Test, When};
use crate::text::lowercase;

/// Patterns per regex set: small enough that each set's lazy DFA stays effective.
const SET_CHUNK: usize = 64;
/// The shortest literal that gates a regex: a shorter one occurs in nearly every text, and the
/// regex would then run on its own instead of in a set.
const MIN_GATE: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    From,
    Subject,
    Body,
}

#[derive(Debug, Default)]
pub struct Prefilter {
    slots: usize,
    subject: TextIndex,
    body: TextIndex,
    from: AddressIndex,
}

#[derive(Debug, Default)]
struct TextIndex {
    /// Each set with the slots of each of its patterns.
    sets: Vec<(RegexSet, Vec<Vec<usize>>)>,
    /// Lower-cased `contains` texts, searched in the lower-cased target.
    literals: Option<(AhoCorasick, Vec<Vec<usize>>)>,
    /// A run of ASCII digits and punctuation of every `contains` text: only such a character
    /// lower-cases to such a character, so when none of the runs occurs in the target as it
    /// is, no text occurs in it lower-cased, and it is not lower-cased for them.
    caseless: Option<Literals>,
    /// Regexes run only when a literal they need occurs in the text.
    gated: Option<Gated>,
}

/// Regexes with a literal that every match contains, and how the literals are found.
#[derive(Debug)]
struct Gated {
    literals: Literals,
    /// By literal: the regexes that need it, each with its slots.
    regexes: Vec<Vec<(Regex, Vec<usize>)>>,
}

/// A few literals are each looked for with `memmem` (vectorised, skipping on the literal's
/// rarest bytes: in Cyrillic text the automaton's rare-byte prefilter stops on nearly every
/// letter); more of them by one automaton, in one pass.
#[derive(Debug)]
enum Literals {
    Each(Vec<memchr::memmem::Finder<'static>>),
    Automaton(AhoCorasick),
}

/// Up to this many gate literals are searched one by one.
const MAX_EACH: usize = 8;

impl Literals {
    /// `memmem` for each of a few literals, one automaton for more; `None` when the automaton
    /// cannot be built.
    fn of(literals: &[Vec<u8>]) -> Option<Literals> {
        if literals.len() <= MAX_EACH {
            let finders = literals
                .iter()
                .map(|l| memchr::memmem::Finder::new(l).into_owned())
                .collect();
            return Some(Literals::Each(finders));
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(literals)
            .ok()
            .map(Literals::Automaton)
    }

    /// Whether any of the literals occurs in `text`.
    fn any_in(&self, text: &str) -> bool {
        match self {
            Literals::Each(finders) => finders.iter().any(|f| f.find(text.as_bytes()).is_some()),
            Literals::Automaton(automaton) => automaton.is_match(text),
        }
    }
}

/// The longest run of ASCII digits and punctuation (no letters) of each text, when every text
/// has one of at least [`MIN_GATE`] bytes; `None` otherwise.
fn caseless_runs<'l>(texts: impl Iterator<Item = &'l str>) -> Option<Literals> {
    let mut runs: Vec<Vec<u8>> = Vec::new();
    for text in texts {
        let run = text
            .as_bytes()
            .split(|b| !b.is_ascii() || b.is_ascii_alphabetic())
            .max_by_key(|run| run.len())
            .filter(|run| run.len() >= MIN_GATE)?;
        if !runs.iter().any(|r| r == run) {
            runs.push(run.to_vec());
        }
    }
    if runs.is_empty() {
        return None;
    }
    Literals::of(&runs)
}

#[derive(Debug, Default)]
struct AddressIndex {
    exact: HashMap<String, Vec<usize>>,
    domains: HashMap<String, Vec<usize>>,
    others: Vec<(Glob, usize)>,
}

/// Patterns collected from the rules, each with the slot(s) it answers.
#[derive(Default)]
struct Collected {
    regexes: Vec<(Regex, Vec<usize>)>,
    literals: Vec<(String, Vec<usize>)>,
}

impl Collected {
    fn add(list: &mut Vec<(String, Vec<usize>)>, pattern: &str, slot: usize) {
        match list.iter_mut().find(|(p, _)| p == pattern) {
            Some((_, slots)) => slots.push(slot),
            None => list.push((pattern.to_string(), vec![slot])),
        }
    }

    fn add_regex(&mut self, regex: &Regex, slot: usize) {
        match self
            .regexes
            .iter_mut()
            .find(|(r, _)| r.as_str() == regex.as_str())
        {
            Some((_, slots)) => slots.push(slot),
            None => self.regexes.push((regex.clone(), vec![slot])),
        }
    }
}

impl Prefilter {
    /// Gives every prefilterable test of `rules` a slot and builds the indexes.
    pub fn build(rules: &mut [Rule]) -> Prefilter {
        let mut slots = 0;
        let mut subject = Collected::default();
        let mut body = Collected::default();
        let mut from_globs: Vec<(Glob, usize)> = Vec::new();
        for rule in rules.iter_mut() {
            visit(&mut rule.when, &mut |target, test| {
                let slot = slots;
                match (target, test) {
                    (Target::Subject | Target::Body, Test::Regex { regex, slot: s }) => {
                        let list = if target == Target::Subject {
                            &mut subject
                        } else {
                            &mut body
                        };
                        list.add_regex(regex, slot);
                        *s = Some(slot);
                    }
                    (Target::Subject | Target::Body, Test::Contains { lower, slot: s, .. }) => {
                        let list = if target == Target::Subject {
                            &mut subject
                        } else {
                            &mut body
                        };
                        Collected::add(&mut list.literals, lower, slot);
                        *s = Some(slot);
                    }
                    (Target::From, Test::Glob { glob, slot: s }) => {
                        from_globs.push((glob.clone(), slot));
                        *s = Some(slot);
                    }
                    _ => return,
                }
                slots += 1;
            });
        }
        let (subject, failed_subject) = TextIndex::build(subject);
        let (body, failed_body) = TextIndex::build(body);
        if !failed_subject.is_empty() || !failed_body.is_empty() {
            // A chunk that did not compile as a set: its tests are run directly instead.
            let failed: Vec<usize> = failed_subject.into_iter().chain(failed_body).collect();
            for rule in rules.iter_mut() {
                visit(&mut rule.when, &mut |_, test| {
                    if let Test::Regex { slot, .. } = test {
                        if slot.is_some_and(|s| failed.contains(&s)) {
                            *slot = None;
                        }
                    }
                });
            }
        }
        Prefilter {
            slots,
            subject,
            body,
            from: AddressIndex::build(from_globs),
        }
    }

    /// The answer of every slotted test for this message.
    pub fn hits(&self, facts: &Facts) -> Vec<bool> {
        let mut hits = vec![false; self.slots];
        let message = facts.env.message;
        self.subject
            .mark(&message.subject, || facts.subject_lower(), &mut hits);
        self.body
            .mark(&message.body, || facts.body_lower(), &mut hits);
        self.from.mark(&facts.env.sender.email, &mut hits);
        hits
    }
}

impl TextIndex {
    /// The index, and the slots of regexes that could not be put into a set.
    fn build(collected: Collected) -> (TextIndex, Vec<usize>) {
        let mut failed = Vec::new();
        let mut sets = Vec::new();
        let (gated, in_sets) = Gated::build(collected.regexes);
        for chunk in in_sets.chunks(SET_CHUNK) {
            let built = RegexSetBuilder::new(chunk.iter().map(|(r, _)| r.as_str()))
                .size_limit(32 << 20)
                .dfa_size_limit(8 << 20)
                .build();
            match built {
                Ok(set) => sets.push((set, chunk.iter().map(|(_, s)| s.clone()).collect())),
                Err(_) => failed.extend(chunk.iter().flat_map(|(_, s)| s.iter().copied())),
            }
        }
        let caseless = caseless_runs(collected.literals.iter().map(|(l, _)| l.as_str()));
        let literals = if collected.literals.is_empty() {
            None
        } else {
            match AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(collected.literals.iter().map(|(l, _)| l.as_str()))
            {
                Ok(ac) => Some((ac, collected.literals.into_iter().map(|(_, s)| s).collect())),
                Err(_) => {
                    failed.extend(
                        collected
                            .literals
                            .iter()
                            .flat_map(|(_, s)| s.iter().copied()),
                    );
                    None
                }
            }
        };
        (
            TextIndex {
                sets,
                literals,
                caseless,
                gated,
            },
            failed,
        )
    }

    /// Marks the slots whose pattern occurs in `text`; `lower` gives it lower-cased (cached
    /// by the caller, for the `contains` literals and the conditions run afterwards).
    fn mark<'t>(&self, text: &str, lower: impl FnOnce() -> &'t str, hits: &mut [bool]) {
        if let Some(gated) = &self.gated {
            gated.mark(text, hits);
        }
        for (set, slots) in &self.sets {
            for i in set.matches(text).iter() {
                for &s in &slots[i] {
                    hits[s] = true;
                }
            }
        }
        if let Some((ac, slots)) = &self.literals {
            if self
                .caseless
                .as_ref()
                .is_some_and(|runs| !runs.any_in(text))
            {
                return;
            }
            for m in ac.find_overlapping_iter(lower()) {
                for &s in &slots[m.pattern().as_usize()] {
                    hits[s] = true;
                }
            }
        }
    }
}

impl Gated {
    /// The gated regexes (`None` when there are none) and the ones left for the sets.
    #[allow(clippy::type_complexity)]
    fn build(regexes: Vec<(Regex, Vec<usize>)>) -> (Option<Gated>, Vec<(Regex, Vec<usize>)>) {
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut gated: Vec<Vec<(Regex, Vec<usize>)>> = Vec::new();
        let mut others = Vec::new();
        for (regex, slots) in regexes {
            let needed = regex_syntax::Parser::new()
                .parse(regex.as_str())
                .ok()
                .and_then(|hir| needed_literal(&hir))
                .filter(|literal| literal.len() >= MIN_GATE);
            let Some(literal) = needed else {
                others.push((regex, slots));
                continue;
            };
            match literals.iter().position(|l| *l == literal) {
                Some(i) => gated[i].push((regex, slots)),
                None => {
                    literals.push(literal);
                    gated.push(vec![(regex, slots)]);
                }
            }
        }
        if literals.is_empty() {
            return (None, others);
        }
        match Literals::of(&literals) {
            Some(literals) => (
                Some(Gated {
                    literals,
                    regexes: gated,
                }),
                others,
            ),
            // Too large an automaton: every regex goes into the sets, as before gating.
            None => (None, gated.into_iter().flatten().chain(others).collect()),
        }
    }

    /// Marks the slots of the gated regexes that match `text`: each is run only when its
    /// literal occurs, and at most once.
    fn mark(&self, text: &str, hits: &mut [bool]) {
        match &self.literals {
            Literals::Each(finders) => {
                for (finder, regexes) in finders.iter().zip(&self.regexes) {
                    if finder.find(text.as_bytes()).is_some() {
                        run(regexes, text, hits);
                    }
                }
            }
            Literals::Automaton(automaton) => {
                let mut tried = vec![false; self.regexes.len()];
                for found in automaton.find_overlapping_iter(text) {
                    let literal = found.pattern().as_usize();
                    if !std::mem::replace(&mut tried[literal], true) {
                        run(&self.regexes[literal], text, hits);
                    }
                }
            }
        }
    }
}

/// Marks the slots of those of `regexes` that match `text`.
fn run(regexes: &[(Regex, Vec<usize>)], text: &str, hits: &mut [bool]) {
    for (regex, slots) in regexes {
        if regex.is_match(text) {
            for &s in slots {
                hits[s] = true;
            }
        }
    }
}

/// A literal that every match of `hir` contains (the longest such one found in its top-level
/// sequence, its groups and its repetitions of at least one), or `None` when there is none
/// (an alternation, case-insensitive letters, classes only).
fn needed_literal(hir: &Hir) -> Option<Vec<u8>> {
    match hir.kind() {
        HirKind::Literal(literal) => Some(literal.0.to_vec()),
        HirKind::Capture(capture) => needed_literal(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => needed_literal(&repetition.sub),
        HirKind::Concat(items) => items.iter().filter_map(needed_literal).max_by_key(Vec::len),
        _ => None,
    }
}

impl AddressIndex {
    fn build(globs: Vec<(Glob, usize)>) -> AddressIndex {
        let mut index = AddressIndex::default();
        for (glob, slot) in globs {
            match glob.key() {
                GlobKey::Exact(address) => index.exact.entry(address).or_default().push(slot),
                GlobKey::Domain(domain) => index
                    .domains
                    .entry(domain.to_lowercase())
                    .or_default()
                    .push(slot),
                GlobKey::Other => index.others.push((glob, slot)),
            }
        }
        index
    }

    fn mark(&self, address: &str, hits: &mut [bool]) {
        let lower = lowercase(address.trim());
        let found = self.exact.get(&lower).into_iter().flatten();
        let domain = lower.rsplit_once('@').map(|(_, d)| d);
        let by_domain = domain
            .and_then(|d| self.domains.get(d))
            .into_iter()
            .flatten();
        for &s in found.chain(by_domain) {
            hits[s] = true;
        }
        for (glob, s) in &self.others {
            if glob.matches(&lower) {
                hits[*s] = true;
            }
        }
    }
}

/// Calls `f` on every test of `when` that reads the sender, the subject or the body, in a
/// fixed order (nested conditions and `any` lists included).
fn visit(when: &mut When, f: &mut dyn FnMut(Target, &mut Test)) {
    for condition in &mut when.conditions {
        match condition {
            Condition::From(l) => visit_test(Target::From, &mut l.test, f),
            Condition::Subject(l) => visit_test(Target::Subject, &mut l.test, f),
            Condition::Body(l) => visit_test(Target::Body, &mut l.test, f),
            Condition::Any(ws) | Condition::All(ws) => ws.iter_mut().for_each(|w| visit(w, f)),
            Condition::Not(w) => visit(w, f),
            _ => {}
        }
    }
}

fn visit_test(target: Target, test: &mut Test, f: &mut dyn FnMut(Target, &mut Test)) {
    match test {
        Test::AnyOf(items) => items.iter_mut().for_each(|t| visit_test(target, t, f)),
        other => f(target, other),
    }
}
