//! What a validation found, as plain data: counts and findings per region. Renderers in
//! `render::integrity` turn it into text or JSON; `verdict` decides the exit status.

use serde::Serialize;

/// Counts of digest files, by what was found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DigestCounts {
    pub valid: usize,
    pub missing: usize,
    pub altered: usize,
    /// Present, but no public key with its fingerprint was given, or it could not be read.
    pub unverified: usize,
}

/// Counts of log files, by what was found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LogCounts {
    pub valid: usize,
    pub missing: usize,
    pub altered: usize,
    /// Present but not readable now (archived to S3 Glacier, for one).
    pub unreadable: usize,
}

/// Links between consecutive digests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChainCounts {
    /// Links checked: a digest's record of its predecessor's hash and signature.
    pub links: usize,
    /// Links that do not hold, or digests no later digest links to.
    pub broken: usize,
    /// Places the chain starts anew, or hours no digest covers.
    pub gaps: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    DigestMissing,
    DigestAltered,
    DigestUnverified,
    LogMissing,
    LogAltered,
    LogUnreadable,
    ChainBroken,
    Gap,
}

impl FindingKind {
    /// Whether the finding proves something was deleted or changed.
    pub fn is_invalid(self) -> bool {
        matches!(
            self,
            FindingKind::DigestMissing
                | FindingKind::DigestAltered
                | FindingKind::LogMissing
                | FindingKind::LogAltered
                | FindingKind::ChainBroken
        )
    }

    /// Whether the finding leaves integrity undecided.
    pub fn is_undecided(self) -> bool {
        matches!(self, FindingKind::DigestUnverified | FindingKind::LogUnreadable)
    }

    pub fn label(self) -> &'static str {
        match self {
            FindingKind::DigestMissing => "digest missing",
            FindingKind::DigestAltered => "digest altered",
            FindingKind::DigestUnverified => "digest unverified",
            FindingKind::LogMissing => "log file missing",
            FindingKind::LogAltered => "log file altered",
            FindingKind::LogUnreadable => "log file unreadable",
            FindingKind::ChainBroken => "chain broken",
            FindingKind::Gap => "gap",
        }
    }
}

/// One problem or notable fact, naming the object it is about (`s3://bucket/key`) and, where
/// another object is the evidence (the digest that records a missing one, the digest that
/// lists an altered log file), that one as `related`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub object: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<String>,
}

/// One region's digest chain and the log files it vouches for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegionReport {
    pub region: String,
    pub digests: DigestCounts,
    pub log_files: LogCounts,
    pub chain: ChainCounts,
    /// Ordered by kind, then object.
    pub findings: Vec<Finding>,
}

/// The whole validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub bucket: String,
    pub prefix: String,
    pub trail: String,
    pub account: String,
    pub start: String,
    pub end: String,
    pub public_keys: String,
    pub regions: Vec<RegionReport>,
}

/// The conclusion, mapped to the exit status by the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every digest and log file in the window is as CloudTrail delivered it.
    Valid,
    /// Something is missing or altered.
    Invalid,
    /// Nothing is proven wrong, but something could not be checked.
    Undecided,
}

impl Report {
    pub fn verdict(&self) -> Verdict {
        let kinds = || self.regions.iter().flat_map(|r| r.findings.iter().map(|f| f.kind));
        if kinds().any(FindingKind::is_invalid) {
            Verdict::Invalid
        } else if kinds().any(FindingKind::is_undecided) {
            Verdict::Undecided
        } else {
            Verdict::Valid
        }
    }

    pub fn totals(&self) -> RegionReport {
        let mut t = RegionReport { region: "all".into(), ..Default::default() };
        for r in &self.regions {
            t.digests.valid += r.digests.valid;
            t.digests.missing += r.digests.missing;
            t.digests.altered += r.digests.altered;
            t.digests.unverified += r.digests.unverified;
            t.log_files.valid += r.log_files.valid;
            t.log_files.missing += r.log_files.missing;
            t.log_files.altered += r.log_files.altered;
            t.log_files.unreadable += r.log_files.unreadable;
            t.chain.links += r.chain.links;
            t.chain.broken += r.chain.broken;
            t.chain.gaps += r.chain.gaps;
        }
        t
    }

    /// The problems, every region's, in report order.
    pub fn problems(&self) -> impl Iterator<Item = (&str, &Finding)> {
        self.regions
            .iter()
            .flat_map(|r| r.findings.iter().filter(|f| f.kind != FindingKind::Gap).map(|f| (r.region.as_str(), f)))
    }
}
