//! Rules: a chain, a list of expressions, a comment, and (once in the
//! kernel) a handle to replace or delete it by.

use super::expr::Expr;
use super::expr_decode::{self, AttrTable};
use super::expr_encode;
use super::msg::{AttrWriter, Decoded};
use super::sys as c;
use super::udata;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub chain: String,
    pub exprs: Vec<Expr>,
    pub comment: Option<String>,
    pub handle: Option<u64>,
}

impl Rule {
    pub fn new(chain: &str, exprs: Vec<Expr>) -> Rule {
        Rule { chain: chain.to_string(), exprs, comment: None, handle: None }
    }

    pub fn with_comment(mut self, comment: &str) -> Rule {
        self.comment = Some(comment.to_string());
        self
    }

    /// Writes chain, expressions and user data (not table, handle or position).
    pub(crate) fn encode(&self, w: &mut AttrWriter) {
        w.str(c::NFTA_RULE_CHAIN, &self.chain);
        w.nest(c::NFTA_RULE_EXPRESSIONS, |l| expr_encode::encode_list(&self.exprs, l));
        if let Some(comment) = &self.comment {
            w.bytes(c::NFTA_RULE_USERDATA, &udata::comment(udata::RULE_COMMENT, comment));
        }
    }

    pub(crate) fn decode(t: &AttrTable<'_>) -> Decoded<Rule> {
        Ok(Rule {
            chain: t.str(c::NFTA_RULE_CHAIN, "rule chain")?,
            exprs: match t.get(c::NFTA_RULE_EXPRESSIONS) {
                Some(list) => expr_decode::decode_list(list)?,
                None => Vec::new(),
            },
            comment: t.get(c::NFTA_RULE_USERDATA).and_then(|u| udata::find_comment(u, udata::RULE_COMMENT)),
            handle: t.opt_u64(c::NFTA_RULE_HANDLE)?,
        })
    }

    /// "rule #handle in chain X (comment)", for errors and logs.
    pub(crate) fn describe(&self) -> String {
        let mut s = match self.handle {
            Some(h) => format!("rule handle {h} in chain {}", self.chain),
            None => format!("rule in chain {}", self.chain),
        };
        if let Some(c) = &self.comment {
            s.push_str(&format!(" ({c:?})"));
        }
        let kinds: Vec<&str> = self.exprs.iter().map(Expr::kind).collect();
        s.push_str(&format!(" [{}]", kinds.join(" ")));
        s
    }
}
