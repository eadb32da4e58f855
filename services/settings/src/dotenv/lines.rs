//! Physical lines of a pasted text, one at a time and without copying: `\n`, `\r\n` and a lone
//! `\r` all end a line, and a text ending in a newline has a last, empty line (as `split` would).

/// A forward-only cursor over the lines of a text, numbering them from 1.
pub(super) struct Lines<'t> {
    rest: Option<&'t str>,
    number: usize,
}

impl<'t> Lines<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Lines {
            rest: Some(text),
            number: 0,
        }
    }

    /// The number of the line last returned (0 before the first).
    pub(super) fn number(&self) -> usize {
        self.number
    }

    /// The next line and its 1-based number, or None after the last.
    pub(super) fn next(&mut self) -> Option<(usize, &'t str)> {
        let rest = self.rest?;
        self.number += 1;
        match rest.find(['\r', '\n']) {
            None => {
                self.rest = None;
                Some((self.number, rest))
            }
            Some(end) => {
                let width = if rest[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                self.rest = Some(&rest[end + width..]);
                Some((self.number, &rest[..end]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    fn all(text: &str) -> Vec<(usize, &str)> {
        let mut lines = Lines::new(text);
        std::iter::from_fn(|| lines.next()).collect()
    }

    #[test]
    fn every_newline_convention_ends_a_line() {
        assert_eq!(
            all("a\nb\r\nc\rd"),
            [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
        );
        assert_eq!(all("a\n"), [(1, "a"), (2, "")]);
        assert_eq!(all(""), [(1, "")]);
        assert_eq!(all("\r\r\n"), [(1, ""), (2, ""), (3, "")]);
    }
}
