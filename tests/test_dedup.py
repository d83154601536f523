# ruff: noqa: E501  (the article texts below are kept one paragraph per line)
"""Pure dedup core: hashes, MinHash LSH band keys, confirmation, attributions."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.dedup import (
    COPY_THRESHOLD,
    REWRITE_THRESHOLD,
    SIGNATURE_SPECS,
    NearDupIndex,
    all_band_keys,
    band_keys,
    best_match,
    classify,
    content_hash,
    entities,
    fact_sketch,
    features,
    find_original_reference,
    minhash,
    normalise_for_hash,
    numbers,
    sentences,
    shingles,
    signatures,
    similarity,
)

REPO = Path(__file__).resolve().parents[1]

# An original report, written for these tests in the manner of the NBC News / CNBC
# story that the project's seed text rewrites.
ORIGINAL = """Elon Musk has said that removing child sexual exploitation material from Twitter is his top priority. But since he bought the company for $44 billion, the platform has shown little sign of a more aggressive effort.

Less than a month ago, Musk said that tackling child exploitation on the platform was "priority #1." Yet according to interviews with four former employees and one current employee, internal company records and people who work on the problem, he has not invested significantly in the work.

Instead, Musk has turned online safety into a campaign to discredit Twitter's former leadership, part of his broader fight against what he calls the "woke mind virus." The shift came after he embraced far-right online rhetoric that often includes exaggerated claims of child sexual abuse.

"It is a crime that they refused to take action on child exploitation for years," Musk tweeted on Friday, responding to the resignation letter of a member of the company's Trust and Safety Council who had worked on child abuse issues. Former CEO Jack Dorsey replied: "This is false."

Under Musk, Twitter has said it suspended more accounts for child sexual abuse material in November than in any other month, crediting new partnerships with unnamed organizations and new "detection and enforcement methods."

Internal records seen by NBC News and CNBC show that of the roughly 1,600 people still working at Twitter, just 25 have titles related to "Trust and Safety." That count includes more than 100 people Musk brought in from Tesla, SpaceX, The Boring Company and from among his investors and advisers. Twitter had more than 7,500 employees at the end of 2021.

One former employee who worked on child safety said a small team was still working on the issue, but that most of its engineers and product managers had left. She asked not to be named for fear of retaliation.

On Monday the company dissolved its Trust and Safety Council, a group of 12 organizations that advised Twitter on its efforts against child sexual exploitation.

Gavin Portnoy, a spokesperson for the National Center for Missing & Exploited Children (NCMEC), said little had changed. "Despite the rhetoric and some of what we've seen people posting online, their CyberTipline numbers are almost identical to what they were prior to Musk coming on board," he said.

Twitter reported 86,666 cases of CSAM in 2017, according to the center, a number Portnoy said is likely too low. "We've always felt that there should have been more reports coming out of Twitter, no matter how you cut it," he said.
"""

# The project's seed text (../shared/seed/musk-twitter-child-safety.txt): a real
# rewrite of that story - same facts and figures, new wording, new order, headings.
SEED_REWRITE = """Elon Musk vowed to end child exploitation on Twitter, workforce too thin

Elon Musk declared he could stop child trafficking on Twitter, the social media platform he spent $44 billion to buy.

He spoke about the issue and stated it was his top concern less than a month ago.

There has yet to be any evidence, though, that Twitter has been acting aggressively since he took charge.

According to conversations with four former employees, one current employee, internal business records, and people working toward the same goal, Musk hasn’t made a significant investment in removing child exploitation-related information from Twitter.

Arguments

Elon Musk turned the discussion of internet security into a significant effort to malign former Twitter leaders.

In addition, he is using his ownership in the “awake mind virus,” a social movement that opposes far-left to center-left principles.

After he agreed with far-right internet rhetoric that usually includes exaggerated accusations of child sex abuse, the change occurred.

“It is a crime that they refused to take action on child exploitation for years,” Musk tweeted on Friday.

His comment was in reaction to a letter of resignation from a member of Twitter’s Trust and Safety Council who focused on child abuse issues.

The previous CEO, Jack Dorsey, responded, “This is false.”

New management

Now run by Musk, Twitter said that more accounts were suspended for child sex abuse content in November than in any other month.

The suspensions were attributed to new partnerships with anonymous groups and new “detection and enforcement mechanisms.”

The following reasons hindered the corporation’s ability to address child sex abuse online:

  • Layoffs
  • Mass-firings
  • Resignations

Internal records

Internal records obtained by NBC News and CNBC reveal that 25 of the 1,600 workers still employed by Twitter had positions related to “Trust and Safety,” although the company’s personnel total is still in flux.

The total includes over 100 individuals Musk authorized to work for Twitter, Tesla, SpaceX, The Boring Company, and numerous investors and advisers.

A former employee with a child safety focus claimed to be aware of a small Twitter team still tackling the issue.

But most of the team’s engineers and product managers have already left.

The employee asked to remain anonymous because she feared retaliation.

By the end of 2021, Twitter employed more than 7,500 people.

According to former employees, layoffs would have been possible even if Musk hadn’t purchased the company.

Child safety groups

Twitter’s ties to outside groups that promote child safety have been cut back under the current management.

The Trust and Safety Council of the social media firm, which was made up of 12 groups and provided advice to Twitter on its campaigns to increase public awareness of child sexual exploitation, was abolished on Monday.

The National Center for Missing & Exploited Children (NCMEC), an organization the US government has tasked with monitoring reports of child sexual abuse content online, claims that not much has changed under Musk’s direction.

NCMEC’s consolidated CSAM reporting system was addressed by the organization’s spokesperson Gavin Portnoy, who said:

“Despite the rhetoric and some of what we’ve seen people posting online, their CyberTipline numbers are almost identical to what they were prior to Musk coming on board.”

Another change observed by Portnoy was the exclusion of Twitter from the organization’s annual social media discussion.

“The previous person was one of the folks who resigned,” he said.

According to Portnoy, Twitter declined when asked if they wanted to send a proxy.

Reports

Twitter stated that 86,666 CSAM incidents were found on the platform in 2017, although Portnoy believes the actual number may be higher.

“We’ve always felt that there should have been more reports coming out of Twitter, no matter how you cut it, and just given the sheer number of users that are there,” he said.

Twitter continues to be plagued with child sexual exploitation content, even if it affects most social media sites.

After learning that their advertisements frequently displayed next to harmful content, Twitter’s advertisers left the platform earlier this year.

Last year, a child sex abuse victim and their mother sued the company, claiming they were negligent in their response to information about a video showing the child roaming the site.

Read also: Meta threatens to remove news content on FB

Content moderation

Using automated detection technologies, internal expert teams, and outside contracts, child abuse content must be detected and eliminated in moderation.

The content complies with Twitter’s policies as follows:

“Imagerey and videos, referred to as child pornography, but also written solicitation and other material that promotes child sexual exploitation.”

Several employees and leaders who worked on trust and safety features, as well as improvements to the current platforms, made up Twitter’s engineering staff, which was reduced by more than half as a result of layoffs, firings, and resignations, according to those with knowledge of the situation and internal records.

Twitter’s current head of trust and safety, Ella Irwin, alleges that Musk also let go of contractors when the company migrated to high-tech automation to fulfill its moderation needs.

“You tend to think more bodies equals more safety,” said Portnoy.

“So, I mean, that is disheartening.”

How many Twitter staff are still working on child safety issues remains unknown.
"""

# Same story, same week, another outlet's own reporting: shares a few facts (the
# council, the $44 billion, Musk's tweet, Dorsey) and nothing sentence by sentence.
SAME_STORY_OTHER_REPORTING = """Twitter on Monday dissolved its Trust and Safety Council, the advisory group of about 100 independent civil, human rights and other organizations the company formed in 2016 to address hate speech, child exploitation, suicide, self-harm and other problems on the platform.

The council had been due to meet with Twitter representatives Monday night. But Twitter informed the group via email that it was disbanding it shortly before the meeting was to take place, according to members who spoke on condition of anonymity to discuss confidential matters.

In the email, Twitter said it was "reevaluating how best to bring external insights" and the council is "not the best structure to do this."

"Our work to make Twitter a safe, informative place will be moving faster and more aggressively than ever before and we will continue to welcome your ideas going forward about how to achieve this goal," said the email, which was signed "Twitter."

Three council members resigned last week, saying in a statement that "contrary to claims by Elon Musk, the safety and wellbeing of Twitter's users is on the decline."

Musk, who bought the platform for $44 billion in October, then attacked the council members on Twitter, saying "It is a crime that they refused to take action on child exploitation for years!" Former CEO Jack Dorsey wrote back that this was false.

Larry Magid, chief executive of ConnectSafely, one of the member groups, said it was shameful that the company disbanded the council without a serious conversation.
"""

HEADER = "Skip to content\nSubscribe for $1 a week | Sign in\nTech | Business | Politics\n"
FOOTER = (
    "\nCopyright 2022 Example Daily. All rights reserved. This material may not be "
    "published, broadcast, rewritten or redistributed.\nFollow us on Facebook and "
    "Instagram. Share this story.\n"
)


def boilerplate_copy(text: str, drop: int = 4) -> str:
    paras = [p for p in text.split("\n") if p.strip()]
    del paras[drop]
    return HEADER + "\n\n".join(paras) + FOOTER


# ------------------------------------------------------------------ exact copies


def test_normalise_for_hash_ignores_typography_case_and_spacing():
    a = "Musk\u2019s \u201cTrust and Safety\u201d team \u2014 25 of 1,600 workers."
    b = "  musk's \"TRUST AND SAFETY\" team - 25 of 1,600\n workers "
    assert normalise_for_hash(a) == normalise_for_hash(b) == (
        "musk s trust and safety team 25 of 1 600 workers"
    )
    assert content_hash(a) == content_hash(b)
    assert len(content_hash(a)) == 40
    assert content_hash(a) != content_hash(a.replace("25", "35"))


def test_exact_copy():
    retyped = ORIGINAL.replace('"', "\u201c").replace("'", "\u2019").replace("\n\n", "\n")
    verdict = classify(ORIGINAL, retyped)
    assert verdict.kind == "exact"
    assert verdict.similarity == 1.0
    assert similarity(ORIGINAL, retyped) == 1.0


# ------------------------------------------------------------------ confirmation


def test_copy_with_other_boilerplate_and_a_paragraph_cut():
    copy = boilerplate_copy(ORIGINAL)
    verdict = classify(ORIGINAL, copy)
    assert verdict.kind == "copy"
    assert verdict.similarity >= COPY_THRESHOLD
    assert classify(copy, ORIGINAL).kind == "copy"  # symmetric


def test_rewrite_of_the_seed_story_is_a_rewrite():
    verdict = classify(ORIGINAL, SEED_REWRITE)
    assert verdict.kind == "rewrite", features(ORIGINAL, SEED_REWRITE)
    assert verdict.similarity >= REWRITE_THRESHOLD + 0.05
    f = features(ORIGINAL, SEED_REWRITE)
    assert f.containment < COPY_THRESHOLD / 2  # it really is reworded, not copied
    assert f.numbers == 1.0  # ... and keeps every figure


def test_same_story_other_reporting_is_not_a_duplicate():
    for text in (ORIGINAL, SEED_REWRITE):
        verdict = classify(text, SAME_STORY_OTHER_REPORTING)
        assert verdict.kind is None
        assert verdict.similarity < REWRITE_THRESHOLD - 0.1
    # ... though it is more similar than an unrelated article
    assert similarity(ORIGINAL, SAME_STORY_OTHER_REPORTING) > similarity(ORIGINAL, UNRELATED)


UNRELATED = """The city council approved a new budget on Tuesday that adds 40 bus drivers and
extends night service on six routes. Transit officials said ridership had recovered to
92% of its 2019 level. The plan also repaves 18 miles of road and hires two inspectors.
"""


def test_unrelated_and_empty():
    assert classify(ORIGINAL, UNRELATED).kind is None
    assert similarity(ORIGINAL, UNRELATED) < 0.2
    assert classify("", ORIGINAL).kind is None
    assert similarity("  ", "") == 0.0


def test_a_teaser_inside_a_long_article_is_not_a_copy_of_it():
    teaser = "Elon Musk has said that removing child sexual exploitation material from Twitter is his top priority."
    assert classify(ORIGINAL, teaser).kind != "copy"


def test_changed_figures_lower_the_score():
    changed = SEED_REWRITE.replace("1,600", "2,300").replace("86,666", "12,000").replace(
        "25 of", "70 of"
    )
    assert features(ORIGINAL, changed).numbers < features(ORIGINAL, SEED_REWRITE).numbers
    assert similarity(ORIGINAL, changed) < similarity(ORIGINAL, SEED_REWRITE)


def test_best_match_prefers_the_strongest_kind():
    copy = boilerplate_copy(ORIGINAL)
    found = best_match(copy, {"other": SAME_STORY_OTHER_REPORTING, "seed": SEED_REWRITE,
                              "orig": ORIGINAL})
    assert found is not None and found[0] == "orig" and found[1].kind == "copy"
    assert best_match(UNRELATED, [(1, ORIGINAL), (2, SAME_STORY_OTHER_REPORTING)]) is None


# ---------------------------------------------------------------- text features


def test_numbers_entities_sentences():
    text = ("Internal records obtained by NBC News and CNBC reveal that 25 of the 1,600 workers "
            "had such roles. Twitter had 7.500 staff in 2021, up 3,5% on 2020. It was 1 of 2.")
    assert numbers(text) == {"25", "1600", "7500", "2021", "3.5", "2020"}
    assert entities(text) == {"nbc", "news", "cnbc"}  # Twitter: only sentence-initial
    assert "twitter" in entities(text + " Musk bought Twitter.")
    assert len(sentences(text)) == 3
    sketch = fact_sketch(text)
    assert "#1600" in sketch and "@cnbc" in sketch and "#1600|#25" in sketch


def test_shingles_are_stable_ints():
    s = shingles("one two three four five six")
    assert len(s) == 2 and all(0 <= x < 2**64 for x in s)
    assert shingles("One, two; three four five six!") == s
    assert len(shingles("too short")) == 1
    assert shingles("") == set()


# ------------------------------------------------------------ minhash and bands


def test_minhash_is_deterministic_and_estimates_jaccard():
    rng = np.random.default_rng(7)
    universe = rng.integers(0, 2**63, size=3000, dtype=np.uint64)
    a, b = universe[:1000], np.concatenate([universe[:667], universe[1000:1333]])  # J 0.5
    sig_a, sig_b = minhash(a, 256), minhash(b, 256)
    assert sig_a.dtype == np.uint64 and sig_a.shape == (256,)
    assert np.array_equal(sig_a, minhash(set(a.tolist()), 256))
    assert abs((sig_a == sig_b).mean() - 0.5) < 0.12
    assert not np.array_equal(minhash(a, 256, seed=2), sig_a)


def test_band_keys_fit_a_signed_bigint_and_carry_band_and_namespace():
    sig = np.zeros(12, dtype=np.uint64)  # every band has the same rows
    keys = band_keys(sig, 4, 3, namespace="x")
    assert len(set(keys)) == 4  # the band number is part of the key
    assert all(0 <= k < 2**63 for k in keys)
    assert set(keys).isdisjoint(band_keys(sig, 4, 3, namespace="y"))
    with pytest.raises(ValueError):
        band_keys(sig, 5, 3)


STABLE_TEXT = "Twitter said 25 of the 1,600 workers at the company still had Trust and Safety roles."
# Computed once (2024, numpy 2.x, CPython 3.11): must never change, or every stored
# band key in every database becomes stale.
EXPECTED_KEYS = [
    8260736219476152187, 8298745572493713077, 4673437900633769031,
    2832626240832746119, 3177094717160419879, 4707946176121874402,
    2561473442863890207, 8810960860072420124, 757692427904184802,
    8995854818493367320, 7638693301512611448, 7789705899124109152,
    4753017895267419265, 4637911266015661807, 5859291116321420825,
    6938229997439872932, 7297196039844373123, 1058524587847450032,
    4725081249322446183, 7937722058629742479, 1656335020312604706,
    4848010675504184186, 2116133186188209520, 7647212778375906027,
    2755932059204204763, 8334014631342970494, 46729981119026480,
    7833063852894811557, 1546357954976449065, 4073137499783736628,
    1124725816125959200, 5402360284752753230, 5187575934235702861,
    2361234018221019712, 6147147263603714419, 6216154414220531517,
    6522520546705652216, 1015987231933747757, 7341239285489012559,
    4342245943201478219, 7510461592536828360, 6390261576442451244,
    7911635323098822189, 5993458852173788937, 3550422328556198968,
    5707100030671941371, 8839137178522034730, 5473324161237930312,
    7060102599604040048, 3276210646702687652, 9133876464456468759,
    3419176325272945277,
]
EXPECTED_HASH = 'b84f3154d80b7d00bac788c8a8756b95b82d7145'


def test_band_keys_are_hard_coded_stable():
    keys = all_band_keys(STABLE_TEXT)
    assert len(keys) == sum(s.bands for s in SIGNATURE_SPECS)
    assert keys == EXPECTED_KEYS
    assert content_hash(STABLE_TEXT) == EXPECTED_HASH


def test_band_keys_are_stable_across_processes():
    code = (
        "import json, sys; from pipeline.dedup import all_band_keys; "
        "print(json.dumps(all_band_keys(sys.argv[1])))"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code, STABLE_TEXT], cwd=REPO, env=env,
            capture_output=True, text=True, check=True,
        ).stdout
        assert json.loads(out) == EXPECTED_KEYS


# ----------------------------------------------------------------------- LSH


def _distractors(n: int) -> list[str]:
    """Same-topic noise: random sentences over the story's own names and words."""
    rng = random.Random(42)
    names = ["Twitter", "Musk", "Elon", "Dorsey", "NCMEC", "Trust", "Safety", "Council",
             "Tesla", "SpaceX", "CNBC", "NBC", "Portnoy", "Meta", "Facebook", "Congress"]
    words = ("child safety exploitation content platform company employees said reports "
             "accounts moderation policy team engineers records former current users "
             "advertisers council members groups abuse material online detection").split()
    out = []
    for _ in range(n):
        sents = []
        for _ in range(rng.randint(6, 14)):
            toks = [rng.choice(words) for _ in range(rng.randint(8, 18))]
            for _ in range(rng.randint(1, 3)):
                toks.insert(rng.randrange(1, len(toks)), rng.choice(names))
            if rng.random() < 0.5:
                toks.insert(rng.randrange(1, len(toks)), str(rng.randint(10, 5000)))
            sents.append(" ".join(toks).capitalize() + ".")
        out.append(" ".join(sents))
    return out


@pytest.fixture(scope="module")
def index_with_distractors() -> tuple[NearDupIndex, list[str]]:
    index = NearDupIndex()
    texts = _distractors(500)
    for i, text in enumerate(texts):
        index.add(i, signatures(text))
    index.add("original", signatures(ORIGINAL))
    return index, texts


def test_lsh_finds_copy_and_rewrite_among_distractors(index_with_distractors):
    index, texts = index_with_distractors
    assert len(index) == 501
    for probe, kind in ((boilerplate_copy(ORIGINAL), "copy"), (SEED_REWRITE, "rewrite")):
        candidates = index.query(signatures(probe), limit=20)
        assert "original" in candidates
        assert candidates[0] == "original"  # most shared bands
        stored = {k: (ORIGINAL if k == "original" else texts[k]) for k in candidates}
        found = best_match(probe, stored)
        assert found is not None and found[0] == "original" and found[1].kind == kind


def test_lsh_does_not_return_unrelated_or_same_story_reports(index_with_distractors):
    index, texts = index_with_distractors
    assert "original" not in index.query(signatures(UNRELATED))
    # A distractor is a candidate of nothing but itself (and maybe a few others),
    # and never confirmed as a duplicate of the original.
    for i in range(0, 500, 50):
        candidates = index.query(signatures(texts[i]))
        assert candidates[0] == i
        assert classify(ORIGINAL, texts[i]).kind is None


def test_index_accepts_band_keys_and_removes():
    index = NearDupIndex()
    keys = all_band_keys(ORIGINAL)
    index.add("a", keys)
    assert index.query(all_band_keys(ORIGINAL)) == ["a"]
    assert index.query_counts(keys) == {"a": len(keys)}
    index.add("a", keys)  # re-adding replaces
    assert len(index) == 1 and index.query(keys) == ["a"]
    index.remove("a")
    assert index.query(keys) == [] and len(index) == 0
    # a bare signature of one kind
    sig = signatures(ORIGINAL)["fact"]
    index.add("b", sig, kind="fact")
    assert index.query(signatures(SEED_REWRITE)["fact"], kind="fact") == ["b"]


def test_signatures_shapes():
    sigs = signatures(ORIGINAL)
    for spec in SIGNATURE_SPECS:
        assert sigs[spec.name].shape == (spec.num_perm,)
        assert 0.2 < spec.threshold < 0.6
    assert signatures("") == {}
    assert all_band_keys("") == []


# ----------------------------------------------------------- explicit evidence


@pytest.mark.parametrize(
    ("text", "outlet"),
    [
        ("Some text. This story was originally published by ProPublica. More.", "ProPublica"),
        ("This article was originally published on The Conversation. Read the original.",
         "The Conversation"),
        ("Originally published by Kaiser Health News.", "Kaiser Health News"),
        ("This article first appeared on Page Six and was reproduced with permission",
         "Page Six"),
        ("A version of this story first appeared in the Los Angeles Times.",
         "Los Angeles Times"),
        ("Text.\n\nThis story first ran on CalMatters.", "CalMatters"),
        ("This story was produced by ProPublica, a nonprofit newsroom, and originally "
         "published by the Center for Public Integrity.", "Center for Public Integrity"),
        ("This article is republished from The Conversation under a Creative Commons "
         "license.", "The Conversation"),
        ("LONDON, Jan 1 (Reuters) - Robert Kubica will be a reserve driver", "Reuters"),
        ("WASHINGTON (AP) \u2014 The Senate voted", "The Associated Press"),
        ("The parade begins at 8 a.m.\n\u2014 The Associated Press", "The Associated Press"),
        ("Ends. First published in The Guardian.", "The Guardian"),
        ("Musk said it was his top priority.", None),
        ("He first appeared in Star Wars in 1977.", None),
        ("The story was published in 2019 by nobody.", None),
        ("Originally published as Netflix star's son dies", None),
    ],
)
def test_find_original_reference(text, outlet):
    assert find_original_reference(text) == outlet
