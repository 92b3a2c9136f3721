"""The built-in corpus: English-like sentences from a known grammar, so the best perplexity is known.

Why a synthetic corpus? On real text nobody knows how good a language model
*could* be. Here the text comes from a probabilistic grammar that we wrote, so
for every word we know its true probability given everything before it, and
hence the true entropy of the text: exp(entropy) is the best perplexity any
model can reach. A trained LSTM can then be judged on an absolute scale
("within 5% of perfect") rather than only against other models. It also needs
no download and is generated in a fraction of a second.

The grammar
-----------

Sentences are about animals and people doing things, with relative clauses
("that ...") and prepositional phrases ("near ...") inside the noun phrases::

    the dog runs <eos>
    every girl that the cats follow sleeps today <eos>
    the horses near my boy chase a bird <eos>
    no teachers that the farmer that the dogs like sees sing <eos>

What makes it a test of *memory* is subject-verb number agreement across the
embedded material: the verb must be "runs" after "the dog ..." and "run"
after "the dogs ...", however long the relative clause or the prepositional
phrase in between, and the nouns in between ("the cats", "my boy") are
often of the other number, to mislead a model that only looks back a few words.

The rules, with their probabilities (``n`` is the number, singular or plural,
``d`` the nesting depth, at most ``MAX_DEPTH`` = 2; ``()`` is "nothing")::

    S          -> NP[main,0] <eos>
    NP[r,d]    -> the NUM | my NUM | no NUM                 .45 .10 .05  number still open
                | a NOM[sg] | every NOM[sg] | this NOM[sg]  .12 .04 .04
                | some NOM[pl] | these NOM[pl] | many NOM[pl] .08 .06 .06
    NUM        -> NOM[sg] | NOM[pl]                         .5 .5  (the noun decides)
    NOM[n,r,d] -> NOUN[n] MOD[n,d] AFTER[n,r]
    AFTER      -> VP[n] if r = main (the main verb, agreeing with the subject),
                  VERB_T[n] if r = rel (the verb of an object relative clause,
                  whose object is the gap: "the dog that the cats chase _"),
                  () if r = obj
    MOD[n,d]   -> ()  |  PP[d+1]  |  that RC[n,d+1]         .50 .20 .30 at d = 0
                                                            .75 .10 .15 at d = 1
                                                            (no MOD at d = 2)
    PP[d]      -> PREP NP[obj,d]
    RC[n,d]    -> VERB_T[n] NP[obj,d]      "that chases the cats"   .4
                | VERB_I[n]                "that sleeps"            .2
                | NP[rel,d]                "that the cats chase"    .4
    VP[n]      -> VERB_I[n] ADVERB? | VERB_T[n] NP[obj,0]   .45 .55
    ADVERB?    -> () | ADVERB                                .7 .3

and the word lists (singular / plural forms; within each list the k-th word
has weight 1/(k+1), Zipf's law, so some words are common and others rare)::

    NOUN    dog cat bird horse boy girl teacher farmer (+ s)
    VERB_I  runs sleeps sings waits laughs  /  run sleep sing wait laugh
    VERB_T  chases sees likes follows helps feeds  /  chase see like follow help feed
    PREP    near behind with under
    ADVERB  today often again quietly

57 words in all (with "that", the nine determiners and ``<eos>``).

How the true probabilities are computed
---------------------------------------

The generator is a stack machine (a top-down PCFG generator): the state is
the list of symbols still to be produced, e.g. after "the dog that the cats"
it is ``[MOD[pl,1], VERB_T[pl], VP[sg], <eos>]``. To produce the next word,
the top symbol is expanded by a random rule until a word is on top.

The grammar is designed so that the *word* produced always tells which
choices were made: two different expansions never start with the same word
(singular and plural nouns differ, a determiner is never a verb, ...). So the
state is a function of the words so far, and the probability of the next word
given the whole history is simply the total probability of the expansion
paths that produce it from the current state (``Grammar.next_words``, which
also checks this "no two paths, one word" property and raises otherwise).
As each word is generated we record -log p(word | history); the entropy of a
split is their mean, in nats per word.

Two fine points. The ideal predictor has no idea where a split begins, but a
model scored with truncated BPTT over N parallel rows starts each row from a
zero state in the middle of a sentence; this costs the model a few words per
row, negligible against thousands. And the mean -log p of one sample differs
from the expectation (the entropy rate) by sampling noise of order 0.01 nats
for 20,000 words; it is the exact floor for the words actually in the split.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from itertools import accumulate

import numpy as np

from .corpus import Corpus, DataError

EOS = "<eos>"
MAX_DEPTH = 2

NOUNS = [("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("horse", "horses"),
         ("boy", "boys"), ("girl", "girls"), ("teacher", "teachers"), ("farmer", "farmers")]
VERBS_I = [("runs", "run"), ("sleeps", "sleep"), ("sings", "sing"), ("waits", "wait"), ("laughs", "laugh")]
VERBS_T = [("chases", "chase"), ("sees", "see"), ("likes", "like"), ("follows", "follow"),
           ("helps", "help"), ("feeds", "feed")]
PREPS = ["near", "behind", "with", "under"]
ADVERBS = ["today", "often", "again", "quietly"]
# Determiners: (word, probability, number it forces or None if the noun decides).
DETERMINERS = [("the", .45, None), ("my", .10, None), ("no", .05, None),
               ("a", .12, "sg"), ("every", .04, "sg"), ("this", .04, "sg"),
               ("some", .08, "pl"), ("these", .06, "pl"), ("many", .06, "pl")]
# MOD[n,d]: probabilities of (nothing, PP, relative clause) at depth d.
MODIFIER_PROBS = {0: (.50, .20, .30), 1: (.75, .10, .15)}
RC_PROBS = (.4, .2, .4)        # subject relative (transitive), subject relative (intransitive), object relative
VP_PROBS = (.45, .55)          # intransitive (+ optional adverb), transitive + object
ADVERB_PROB = .3

NUMBERS = ("sg", "pl")


class GrammarError(RuntimeError):
    """The grammar breaks the property the entropy computation relies on (a bug, not a data problem)."""


# ---------------------------------------------------------------------------
# The grammar as a table of rules
# ---------------------------------------------------------------------------

def _zipf(words):
    """Rules 'X -> word' with Zipf weights 1/(k+1), normalized to sum to 1."""
    weights = [1.0 / (k + 1) for k in range(len(words))]
    total = sum(weights)
    return [(w / total, (word,)) for w, word in zip(weights, words)]


def build_rules(max_depth: int = MAX_DEPTH) -> dict[str, list[tuple[float, tuple[str, ...]]]]:
    """The grammar of the module docstring: {nonterminal: [(probability, right-hand side), ...]}.

    Nonterminals are upper-case strings with their parameters, e.g.
    "NOM[sg,rel,1]"; anything that is not a key of the table is a word.
    """
    rules: dict[str, list[tuple[float, tuple[str, ...]]]] = {"S": [(1.0, ("NP[main,0]", EOS))]}
    k = NUMBERS.index
    for n in NUMBERS:
        rules[f"NOUN[{n}]"] = _zipf([pair[k(n)] for pair in NOUNS])
        rules[f"VERB_I[{n}]"] = _zipf([pair[k(n)] for pair in VERBS_I])
        rules[f"VERB_T[{n}]"] = _zipf([pair[k(n)] for pair in VERBS_T])
        p_i, p_t = VP_PROBS
        rules[f"VP[{n}]"] = [(p_i, (f"VERB_I[{n}]", "ADVERB?")), (p_t, (f"VERB_T[{n}]", "NP[obj,0]"))]
    rules["PREP"] = _zipf(PREPS)
    rules["ADVERB"] = _zipf(ADVERBS)
    rules["ADVERB?"] = [(1 - ADVERB_PROB, ()), (ADVERB_PROB, ("ADVERB",))]

    for d in range(max_depth + 1):
        for role in ("main", "rel", "obj"):
            if role == "main" and d > 0:
                continue  # the main clause's subject is always at depth 0
            rules[f"NP[{role},{d}]"] = [(p, (det, f"NOM[{num},{role},{d}]" if num else f"NUM[{role},{d}]"))
                                        for det, p, num in DETERMINERS]
            rules[f"NUM[{role},{d}]"] = [(.5, (f"NOM[{n},{role},{d}]",)) for n in NUMBERS]
            for n in NUMBERS:
                after = {"main": (f"VP[{n}]",), "rel": (f"VERB_T[{n}]",), "obj": ()}[role]
                mod = (f"MOD[{n},{d}]",) if d < max_depth else ()
                rules[f"NOM[{n},{role},{d}]"] = [(1.0, (f"NOUN[{n}]", *mod, *after))]
        if d < max_depth:
            rules[f"PP[{d + 1}]"] = [(1.0, ("PREP", f"NP[obj,{d + 1}]"))]
            p_none, p_pp, p_rc = MODIFIER_PROBS[d]
            for n in NUMBERS:
                rules[f"MOD[{n},{d}]"] = [(p_none, ()), (p_pp, (f"PP[{d + 1}]",)),
                                          (p_rc, ("that", f"RC[{n},{d + 1}]"))]
                p_st, p_si, p_obj = RC_PROBS
                rules[f"RC[{n},{d + 1}]"] = [(p_st, (f"VERB_T[{n}]", f"NP[obj,{d + 1}]")),
                                             (p_si, (f"VERB_I[{n}]",)),
                                             (p_obj, (f"NP[rel,{d + 1}]",))]
    return rules


# ---------------------------------------------------------------------------
# The stack machine: next-word distributions, sampling, parsing
# ---------------------------------------------------------------------------

class Grammar:
    """A PCFG run as a stack machine, with exact next-word probabilities.

    A *state* is the tuple of symbols still to be produced, top first. After
    ``<eos>`` the stack is empty and the next sentence starts from ("S",).
    """

    def __init__(self, rules=None, start: str = "S"):
        self.rules = build_rules() if rules is None else rules
        self.start = start
        self.start_state = (start,)
        self._next: dict[tuple, dict[str, tuple[float, tuple]]] = {}  # state -> {word: (p, next state)}, on demand

    def words(self) -> set[str]:
        """Every word (terminal) that appears in some rule."""
        return {s for rhs_list in self.rules.values() for _, rhs in rhs_list
                for s in rhs if s not in self.rules}

    def next_words(self, state: tuple) -> dict[str, tuple[float, tuple]]:
        """{word: (p(word | state), state after the word)} over every word possible next.

        Computed by expanding the top nonterminal by each of its rules (and so
        on recursively) until a word is on top, multiplying rule probabilities
        along the way, and adding up the paths that give the same word. Raises
        GrammarError if two paths give the same word but different states: the
        history would then not determine the state.
        """
        out = self._next.get(state)
        if out is None:
            acc: dict[str, tuple[float, tuple]] = {}
            self._expand(state, 1.0, acc)
            out = self._next[state] = {w: (p, nxt) for w, (p, nxt) in acc.items()}
        return out

    def _expand(self, stack, p, acc):
        if not stack:
            raise GrammarError("a sentence ended without a final word; S must end with <eos>")
        top, rest = stack[0], stack[1:]
        if top not in self.rules:                 # a word: this path emits it
            nxt = rest or self.start_state        # after the sentence's last word, a new sentence
            if top in acc:
                if acc[top][1] != nxt:
                    raise GrammarError(f"the word {top!r} can be produced in two ways from the state {stack}: "
                                       f"leading to {acc[top][1]} or to {nxt}")
                acc[top][0] += p
            else:
                acc[top] = [p, nxt]
            return
        for q, rhs in self.rules[top]:            # a nonterminal: try each of its rules
            if q > 0:
                self._expand(rhs + rest, p * q, acc)

    def logprobs(self, words) -> list[float]:
        """log p(word_t | words before it) for each word, re-derived from the words alone."""
        state, out = self.start_state, []
        for t, w in enumerate(words):
            options = self.next_words(state)
            if w not in options:
                raise DataError(f"word {t} {w!r} is impossible here (expected one of {sorted(options)})")
            p, state = options[w]
            out.append(math.log(p))
        return out

    def sample_derivation(self, rng) -> tuple[list[str], float]:
        """One sentence by plain recursive expansion, and the log-probability of its derivation.

        This is the textbook way to run a PCFG, independent of the stack machine;
        tests use it to check that the product of next-word probabilities equals
        the probability of the derivation (the grammar is unambiguous).
        """
        words, logp = [], 0.0

        def expand(symbol):
            nonlocal logp
            if symbol not in self.rules:
                words.append(symbol)
                return
            options = self.rules[symbol]
            probs = np.array([q for q, _ in options])
            k = rng.choice(len(options), p=probs / probs.sum())
            logp += math.log(options[k][0])
            for s in options[k][1]:
                expand(s)

        expand(self.start)
        return words, logp

    def generate(self, num_tokens: int, rng, word_to_id: dict) -> tuple[np.ndarray, np.ndarray]:
        """``num_tokens`` word ids from the start of a sentence, and -log p(word | history) of each.

        Sampling the next word from the merged distribution of ``next_words`` is
        the same as sampling the generator's choices one by one (the choices
        that give the same word lead to the same state). The stream stops
        after exactly ``num_tokens`` words, possibly inside a sentence.
        """
        tables: dict[tuple, tuple] = {}   # state -> (cumulative probabilities, ids, -log p, next states)
        state = self.start_state
        ids, nll = [], []
        for u in rng.random(num_tokens).tolist():
            table = tables.get(state)
            if table is None:
                options = self.next_words(state)
                table = tables[state] = (list(accumulate(p for p, _ in options.values())),
                                         [word_to_id[w] for w in options],
                                         [-math.log(p) for p, _ in options.values()],
                                         [nxt for _, nxt in options.values()])
            cum, word_ids, word_nll, nexts = table
            k = min(bisect_right(cum, u), len(cum) - 1)   # min(): the last sum may be 1 - 1e-16
            ids.append(word_ids[k])
            nll.append(word_nll[k])
            state = nexts[k]
        return np.array(ids, dtype=np.int64), np.array(nll, dtype=np.float64)


def builtin_vocab(grammar: Grammar | None = None) -> list[str]:
    """The fixed vocabulary: ``<eos>`` first (id 0), then the other words sorted alphabetically."""
    words = (grammar or Grammar()).words()
    return [EOS] + sorted(words - {EOS})


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

def make_builtin_corpus(seed: int = 1234, train_tokens: int = 200_000, valid_tokens: int = 20_000,
                        test_tokens: int = 20_000) -> Corpus:
    """The built-in corpus (name "builtin"), identical for the same arguments on every machine.

    Each split is an independent stream from its own generator, derived from
    ``seed`` with ``np.random.SeedSequence(seed).spawn(3)``, so changing the
    size of one split does not change the others. ``corpus.entropy`` holds the
    true entropy of each split in nats per word.
    """
    sizes = {"train": train_tokens, "valid": valid_tokens, "test": test_tokens}
    for split, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise DataError(f"{split}_tokens must be a positive integer, got {size!r}")
    grammar = Grammar()
    vocab = builtin_vocab(grammar)
    word_to_id = {w: i for i, w in enumerate(vocab)}
    streams = np.random.SeedSequence(seed).spawn(len(sizes))
    ids, entropy = {}, {}
    for (split, size), ss in zip(sizes.items(), streams):
        ids[split], nll = grammar.generate(int(size), np.random.default_rng(ss), word_to_id)
        entropy[split] = float(nll.mean())
    description = (f"built-in synthetic corpus (seed {seed}): English-like sentences with subject-verb "
                   f"agreement across relative clauses, {len(vocab)} words; true entropy "
                   f"{entropy['valid']:.3f} nats/word on valid (best perplexity {math.exp(entropy['valid']):.2f})")
    return Corpus(name="builtin", vocab=vocab, train=ids["train"], valid=ids["valid"], test=ids["test"],
                  entropy=entropy, description=description)
