//! TAP output: numbered `ok` / `not ok` lines, then the `1..N` plan as the last line.

use std::fmt::Display;

pub struct Tap {
    n: usize,
}

impl Tap {
    pub fn new() -> Tap {
        Tap { n: 0 }
    }

    pub fn ok(&mut self, what: &str) {
        self.n += 1;
        println!("ok {} - {what}", self.n);
    }

    pub fn not_ok(&mut self, what: &str, why: &str) {
        self.n += 1;
        println!("not ok {} - {what}: {why}", self.n);
    }

    pub fn skip(&mut self, what: &str, why: &str) {
        self.n += 1;
        println!("ok {} - {what} # SKIP {why}", self.n);
    }

    /// Compares got with want.
    pub fn eq<T: PartialEq + Display>(&mut self, what: &str, got: T, want: T) {
        if got == want {
            self.ok(what);
        } else {
            self.not_ok(what, &format!("got {got} want {want}"));
        }
    }

    /// Records a condition with the explanation used when it fails.
    pub fn check(&mut self, what: &str, cond: bool, why: impl FnOnce() -> String) {
        if cond {
            self.ok(what);
        } else {
            let w = why();
            self.not_ok(what, &w);
        }
    }

    pub fn plan(&self) {
        println!("1..{}", self.n);
    }
}
