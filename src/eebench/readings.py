"""Deviations and readings: every place where the two papers are silent or inconsistent, and the reading this
project takes, each with the config key that switches it where one exists. The one maintained list; the
README's section "Readings where the papers are silent" (``eebench readings --format markdown``) and the
paper's section ``paper/readings.tex`` (``eebench readings --format latex``) are generated from it.

Markup of the texts (renders in Markdown as is, and is translated to LaTeX): a backtick-quoted span for code
(config keys, code, file names; ``\\texttt``), ``**bold**``, ``*emphasis*`` and a backslash-escaped asterisk
for a literal one (``Π\\*``). A text continues the sentence its bold title begins: it starts with the colon or
the words that follow the title (``**Budget rule** (paper B §4.3 …): per table …``). Anything else is plain text;
the LaTeX rendering escapes TeX's special characters and maps the few non-ASCII symbols used (≥, σ, ‖, …) to
commands pdflatex knows, and refuses a character it has no mapping for.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from eebench.latex import latex_escape


@dataclass(frozen=True)
class Reading:
    """One place where the papers are silent or inconsistent. ``title``: the short topic (bold, the text's
    subject); ``source``: which paper(s) and section/table/equation it concerns; ``text``: the reading taken,
    continuing the title's sentence; ``keys``: the config keys that switch it (dotted, ``<name>`` for a
    user-chosen name: ``tables.<name>.rule``), empty where none does; ``alternative``: the other reading a
    reader could want, where the text does not already say it."""

    title: str
    source: str
    text: str
    keys: tuple[str, ...] = ()
    alternative: str | None = None


READINGS: tuple[Reading, ...] = (
    Reading(
        "Budget rule",
        "paper B §4.3, Tables 1–2",
        '(paper B §4.3 says "maximum averaged computational budget" only): per table, `rule:` `best` '
        "| `last` | `val`; paper-B tables use `last`, as the paper's numbers and released code do "
        "(`visualize/cost_vs_table.py` there takes the last threshold whose cost is within the "
        "budget). Ties: `best` → the cheaper point; `last` → the better one; `val` → the cheaper, "
        "then the lower threshold.",
        keys=('tables.<name>.rule',),
    ),
    Reading(
        "The 35% budget header",
        "paper B Tables 1, 4, 5, 7, 11, 18, 19",
        ": Table 11's header prints 35% where Table 1 prints 25% above the same numbers (38.49, 52.98, "
        "52.89), and Tables 5, 7 and 19 use 25%: one of the two headers is a typo, so "
        "`config/paper/resnet50_tinyimagenet.yaml` shows both columns. Tables 4 and 18 (ViT-B/16 on "
        "CIFAR-100) print 35% throughout (the first IC, after layer 3, costs about a third), so "
        "`config/paper/vit_b_cifar100.yaml` uses the budgets 35/50/75/100 %. A table's budgets are spelled in "
        "its budget files' paths, so tables with other budgets never share them.",
        keys=("budgets", "tables.<name>.budgets"),
    ),
    Reading(
        "Spread of paper B's main-text tables",
        "paper B Tables 1-4 and App. C, Tables 8-18",
        "(the spread a regenerated cell is judged against, `eebench.acceptance`): Tables 1-4 print means only, "
        "and each of their settings repeats the means of an appendix table that prints mean ± std over seeds "
        "(Table 1's ResNet-34, MSDNet, ViT-T C-100, ResNet-50 and ViT-T IN-1k blocks = Tables 8-12, Table 2 = "
        "Tables 13-14, Table 3 = Tables 15-17, Table 4 = Table 18; value by value in "
        "`tests/test_paper_numbers.py`). Both print the same runs, so a cell compared with a value of Tables 1-4 "
        "takes the std the appendix prints with the same mean (paired by column position, as Table 11 heads with "
        "35% what Table 1 heads with 25%). Table 1's ViT-S IN-1k block and Tables 5-7 have no such twin: their "
        "cells show the paper's value and our difference, unmarked, and the caption says why. A cell is marked "
        "with a dagger where our mean, on the two decimals shown, differs from the paper's by more than twice the "
        "paper's std. Only a `scale: paper` config compares; the miniature does not (other data and models).",
        keys=("scale", "tables.<name>.paper_match"),
        alternative="Tables 1-4 without a std, none of their cells marked",
    ),
    Reading(
        "Multi-label confidence with no positive label",
        "paper A §3 (the confidence criterion)",
        '(paper A: "all positively classified labels"): the smallest sigmoid among the positively classified '
        "labels; with none positive, the largest sigmoid (< 0.5), so an empty prediction never exits at a "
        "threshold of 0.5 or more.",
    ),
    Reading(
        "E_closest ties",
        "paper A §3 (B_EE, Fig. 3)",
        ": E is the mean 1-based exit head; E_closest(h_j) is the operating point whose E is nearest to h_j; of "
        "two equally near points, the better one.",
    ),
    Reading(
        "`val` rule on a subsampled sweep",
        "paper B §4.3",
        ": refused (`sweep.max_points` must be 0), since a validation threshold maps onto the test "
        "sweep exactly only when every operating point is kept.",
        keys=('sweep.max_points',),
    ),
    Reading(
        "IC positions",
        "paper B §4.6, App. E",
        "(paper B §4.6, App. E) count blocks from 0, the stem inside block 0 (as the authors' code "
        "`architectures/early_exits/sdn.py` does): `placement: [2, 4, …, 14]` for ResNet-34.",
        keys=('models.<name>.placement',),
    ),
    Reading(
        "SDN IC on maps smaller than 4×4",
        "paper B's ICs (SDN's IC in its code)",
        ": adaptive pooling repeats positions (paper B's code); the original SDN skips pooling there."
        " On token inputs it reduces to `linear` (`ic.pool_size`).",
        keys=('models.<name>.ic.pool_size',),
    ),
    Reading(
        "Phase 1 is the plain network",
        "paper B §2, eq. (1)",
        '(eq. 1: "θ_IC are either not trained or not present at all"): trained without ICs, so one '
        "run serves every IC variant; paper A's static baseline at the last head is that run.",
        keys=(),
    ),
    Reading(
        "Which setting owns a shared run",
        "both papers (runs shared between settings)",
        ": the first model entry, in config order, with the same settings.",
        keys=(),
    ),
    Reading(
        "Initialisation",
        "both papers (silent on seeding)",
        ": blocks and final classifier from the seed, each IC from (seed, block); the training stream"
        " is seeded apart, so IC variants start phase 1 identically.",
        keys=(),
    ),
    Reading(
        "Disjoint phase 3",
        "paper B §2, eq. (3); Tables 6, 10, 16, 20; its code",
        "keeps the final classifier as phase 1 trained it (`regime: disjoint`), as paper B's own tables "
        "show: Tables 6 and 20 give identical disjoint 100%/Unlimited values for every IC size, and Table 16 "
        "(GPF, a separately trained model) the same disjoint Unlimited value as Table 10 (63.99), which only "
        "a final classifier untouched by the IC phase gives; the authors' code freezes it too "
        "(`methods/early_exit.py`: `model.train('without_backbone')` freezes the whole base model). Every "
        "config uses it. Eq. (3) read literally (the final classifier, the K-th \"IC\" of §2, trained with the "
        "ICs, its loss counted) is `regime: disjoint_trained_final`.",
        keys=('tables.<name>.regimes',),
    ),
    Reading(
        "Fidelity presets",
        "paper B (text and tables) against the authors' released code",
        ": `fidelity: paper` (the default) takes the papers' text and tables wherever they speak; "
        "`fidelity: authors_code` switches every reading where the released code does otherwise (early "
        "stopping, label smoothing with Mixup/CutMix, GPF's loss weights, the mean over heads, GELU in "
        "two-layer ICs: `eebench.fidelity`). Settable per config and per model (`models.<name>.fidelity`, "
        "inherited through `base:`); a key the config states is never overridden; the preset fills the "
        "setting before its runs are named, so presets that differ never share a run. Captions name the "
        "preset; the default config's `fidelity_differences` table shows what the switch moves on the "
        "regimes. Where text, tables and code agree (disjoint's frozen final classifier) both presets "
        "follow them.",
        keys=("fidelity", "models.<name>.fidelity"),
    ),
    Reading(
        "Warm restarts and the epoch caps",
        "paper B §4.1 (cosine annealing with warm restarts, early stopping); App. E",
        ': paper B names the scheduler and the early-stopping patience but no restart period T_0 and no '
        "epoch bound. Every config sets `restart_epochs` (T_0) and `max_epochs` and says so in a comment: "
        "the paper configs T_0 = the patience (50 for ResNet-34/CIFAR-100, MSDNet, ResNet-50/Tiny-ImageNet "
        "and ResNet-20/CIFAR-10; 30 for the ViT-T/CIFAR-100 and ViT-B settings; 25 on ImageNet; 10 for paper "
        "A's fine-tuning; 3 for BERT) and `max_epochs` a bound early stopping is meant to reach first (2000 "
        "for the CIFAR settings, 3000 for ResNet-50/Tiny-ImageNet as the authors' script's per-phase epochs, "
        "1000 on ImageNet, 200 for ViT-B as the authors' script, 100 for BERT and paper A); the default "
        "config T_0 = 8 with a bound of 200 that early stopping reaches first (see \"The miniature\"). A "
        "run that reaches its cap is not converged: each phase's last epoch records how it ended, the "
        "training log says it, and the claims table marks a verdict read on such a run.",
        keys=("training.restart_epochs", "training.max_epochs"),
    ),
    Reading(
        "Official validation sets as test splits",
        "paper B §4.1; paper A §4",
        ": where a dataset's test labels are not public (ImageNet, Tiny-ImageNet, COCO, GLUE's STS-B) the "
        "official validation set is the test split, and the early-stopping validation split is a stratified "
        "part of the official training set (`val_fraction`, `split_seed`; not given by the papers); CIFAR "
        "keeps its official test set.",
        keys=("datasets.<name>.val_fraction", "datasets.<name>.split_seed"),
    ),
    Reading(
        "The spread over seeds",
        "paper B Tables 1-20 (mean ± std over three seeds, §4.1)",
        ": the sample standard deviation (ddof = 1), as the papers do not say which; over three seeds it is "
        "sqrt(1.5) ≈ 1.22 times the population one.",
        keys=(),
    ),
    Reading(
        "Multi-label entropy",
        "paper A §3 (the entropy criterion)",
        ": with sigmoid heads, 1 − the mean over labels of each label's binary entropy in bits (each in [0, 1]); "
        "a softmax multi-label head takes the softmax's entropy divided by log C, as single-label heads do.",
        keys=("criteria.<name>.criterion",),
    ),
    Reading(
        "MSDNet's ICs",
        "paper B §4.1 (\"SDN unless otherwise specified\"), App. E.2",
        ": MSDNet keeps its own classifier at every exit (two 3×3 stride-2 conv-BN-ReLU, pool, linear: "
        "`ic: {type: msdnet}`), not SDN's, as MSDNet is \"an architecture dedicated for multi-exit models\" "
        "(§4.1) whose exits are part of its design; SDN's head on MSDNet's coarsest scale would be another "
        "network.",
        keys=("models.<name>.ic",),
    ),
    Reading(
        "ViT-T's random resizing",
        "paper B App. E.3 (ViT-T, CIFAR-100)",
        '(E.3: "random resizing, cropping, rotation, contrast adjustment, random erasing, CutMix and Mixup"): '
        "`config/paper/vit_t_cifar100.yaml` applies no random resizing, as the authors' CIFAR-100 pipeline "
        "has none; `resized_crop_scale: [min, 1.0]` adds it, with a scale the paper does not give.",
        keys=("datasets.<name>.resized_crop_scale",),
    ),
    Reading(
        "Settings App. E does not give",
        "paper B Table 1, Fig. 17 (ViT-S); §3 (ResNet-20/CIFAR-10); Tables 6, 20 (ViT-T IC size)",
        ": ViT-S on ImageNet (`config/paper/vit_s_imagenet.yaml`) takes E.5's values for ViT-T on the same "
        "data (the authors' ViT-S base script differs: batch 1536, lr 4e-3, weight decay 0.05, clipping 1.0); "
        "ResNet-20 on CIFAR-10 (`config/paper/b_analysis_resnet20_cifar10.yaml`) takes ResNet-34/CIFAR-100's "
        "E.1 recipe; ViT-T on Tiny-ImageNet and Imagenette (`config/paper/vit_t_ic_size.yaml`) take E.3's "
        "values. Each file says so in its comments.",
        keys=(),
    ),
    Reading(
        "Where the authors' scripts differ from App. E",
        "paper B App. E.4, E.8; the authors' `scripts/`",
        ": the paper configs follow App. E. The released scripts train ResNet-50 on Tiny-ImageNet with SGD "
        "without momentum, lr 0.2 in phase 1 and 0.02 after, batch 125, no scheduler "
        "(`scripts/sdn_example_resnet50_tinyin.py`), where E.4 gives batch 256, lr 1e-3 and cosine warm "
        "restarts; ViT-B on CIFAR-100 with SGD lr 0.1, momentum 0.9, weight decay 5e-5 and gradient-norm "
        "clipping 1.0 (`scripts/pretrained_vit_cifar100_finetuning.py`). This project's one training loop is "
        "AdamW with cosine warm restarts.",
        keys=("training.lr", "training.batch_size", "training.weight_decay"),
        alternative="the scripts' optimisers would need an `optimizer` key (not offered yet).",
    ),
    Reading(
        "Branch-wise",
        "paper B App. A (branch-wise)",
        '("only the part of the backbone corresponding to the current IC being unfrozen"): the blocks'
        " after the previous head up to the current one (greedy, layer-wise); earlier blocks stay "
        "frozen. The last phase trains the last segment with the final classifier. The other reading "
        "(the whole backbone up to the current head) is the phase selector `blocks_to_head`: one "
        "regime entry in `eebench/training/regimes.py`.",
        keys=(),
    ),
    Reading(
        "Separate",
        "paper B App. A (separate)",
        ": phase i sums the losses of heads 1..i with the whole model trainable (blocks after head i "
        "get no gradient); its last phase is joint training.",
        keys=(),
    ),
    Reading(
        "Alternating",
        "paper B App. A (alternating)",
        "(Xin et al., 2021, as paper B states it): odd steps eq. (1) (final loss only), even steps "
        "eq. (2) (every head, the final included), counted over the phase's steps across epochs; one "
        "early stopping over every head.",
        keys=(),
    ),
    Reading(
        "Mixed-gradual",
        "paper B App. A (mixed-gradual)",
        ': "m phases, m the number of ICs; in phase i the last i ICs": we count the final classifier '
        "as the last IC (eq. 1 calls it θ_IC^(K)), so phase 1 is mixed's phase 1 (shared) and phase K"
        " is mixed's joint phase.",
        keys=(),
    ),
    Reading(
        "The miniature",
        "paper B §4.1 (train until no exit improves); paper A §4.1; both papers' ICs (SDN)",
        ": the default config follows the papers' protocol, every phase trained until early stopping (patience "
        "5 on every head's validation accuracy), with settings chosen for models that converge in little "
        "time, never by whether a claim then holds. Measured on the digits CNN (issue 22): its former "
        "linear ICs (global average pool + linear) gave head 1 only 16 averaged channels; it learned so "
        "slowly that early stopping came after 43-53 epochs at lr 3e-3 and 147 with patience 10, while a "
        "16-epoch cap ended 148 of 175 phases. SDN's IC (both papers' configs) with its pooling scaled to the "
        "miniature: SDN pools CIFAR's 32×32 maps to 4×4, so the miniature's 8×8 maps go to 1×1 (`ic: {type: "
        "sdn, pool_size: 1}`, a global mix of max and average pooling). At lr 1e-2 its joint phases stop after "
        "27-44 epochs with head 1 at 81-82% and the last at 98-99% (a real trade-off); with SDN's own 4×4 "
        "head 1 reached 98-99% too (every budget the same model: no trade-off left), with 2×2 94-97%. lr: "
        "1e-2 against 3e-3 and batch 128 (summed epochs to stop over joint/disjoint/mixed × 2 seeds, with "
        "4×4 pooling: 167, 238, 194 at 1.27× cheaper epochs). `max_epochs: 200` is a safety bound no phase of the default run "
        "reaches. The IC-size variant is that IC with a hidden layer (`mlp` with `pool_size: 1`), so it stays "
        "the larger IC; paper A's learning-rate grid (Figs "
        "2-3) is {1e-2, 1e-3}, a decade apart as the paper's; SDN loss scaling ramps over 30 epochs; epochs "
        "run channels-last (10% faster here, `training.memory_format`). The multi-label composites keep 800 "
        "training images: with 400, a joint run stalled at 15% F1 and stopped early after 9 epochs.",
        keys=("training.lr", "training.max_epochs", "training.memory_format", "models.<name>.ic"),
    ),
    Reading(
        "Loss scaling formulas",
        "paper B §4.4",
        ": paper B names the methods but gives no weights; `increasing`/`decreasing` are linear in "
        "the head index with the largest weight 1; `sdn` takes an IC's \"relative position\" as the "
        "fraction of blocks it sees and ramps over `ramp_epochs`, which `sdn` requires: SDN ramps over its "
        "fixed training length and ours stops early, so the `max_epochs` cap (3000 for ResNet-50 on "
        "Tiny-ImageNet) would test another schedule (IC 14 at 0.17 of its 0.94 at epoch 523). "
        "`config/paper/resnet50_tinyimagenet.yaml` sets 523, the fewest epochs §4.7 reports for that "
        "setting (disjoint), so every regime trains at SDN's final weights before it can have converged; "
        "the default sets 30, about the epochs its joint runs take to stop. The authors' released code has no loss scaling (every head's "
        "loss weighs the same). A loss of one head (eq. 1, branch-wise steps) is never scaled, "
        "so phase 1 is shared across scalings and gradient equilibrium leaves eq. (1) steps alone.",
        keys=('training.loss_scaling', 'training.loss_scaling.ramp_epochs'),
    ),
    Reading(
        "Gradient equilibrium with some heads out of the loss",
        "paper B §4.4 (gradient equilibrium, Li et al., 2019)",
        "(separate, mixed-gradual): the average at head j counts only the heads from j on whose "
        "losses are summed; with every head counted it is Li et al.'s 1/(K−j).",
        keys=('training.loss_scaling',),
    ),
    Reading(
        "STS-B's test split",
        "paper B §4.1, Table 2 (STS-B)",
        ": GLUE's test labels are not public; `dev.tsv` is the test split and the validation split is"
        " held out of `train.tsv` (`val_fraction`).",
        keys=('datasets.<name>.val_fraction',),
    ),
    Reading(
        "20 Newsgroups",
        "paper B §4.1 (20 Newsgroups)",
        "posts are kept raw (paper B gives no cleaning; `remove: [headers, footers, quotes]` applies "
        "scikit-learn's rules), read as latin-1.",
        keys=('datasets.<name>.remove',),
    ),
    Reading(
        "Exit positions of App. E",
        "paper B App. E",
        "index the authors' module lists: ResNet residual blocks (stem in block 0); ViT encoder "
        "layers — ViT-T/CIFAR's position 6 is the last layer, which here carries the final classifier"
        " (7 heads where the authors have 8, their exit at 6 sitting before the final LayerNorm); "
        "BERT's {1, 3, …, 21} read as two positions per encoder layer, so the odd ones are layer ends"
        " (placement 0..10); MSDNet's {0..17} cannot be seven blocks: `msdnet.granularity: layer` "
        "makes every module a block (the table in `eebench/models/msdnet.py`).",
        keys=('models.<name>.placement', 'models.<name>.params.granularity'),
    ),
    Reading(
        "ResNet-20",
        "paper B §3 (ResNet-20, the analysis setting)",
        "(paper B's analysis setting, absent from its code) uses He et al.'s option A shortcut "
        "(`shortcut: B` = the authors' resnets.py projection).",
        keys=('models.<name>.params.shortcut',),
    ),
    Reading(
        "ViT's final classifier",
        "paper B App. E (ViT)",
        "starts like every other linear head (torchvision zero-initialises it).",
        keys=(),
    ),
    Reading(
        "Augmentation parameters",
        "paper B App. E (training recipes)",
        "(CutMix/MixUp alphas, crop scale, rotation, contrast, erasing) are not given by paper B; "
        "each schema entry says which value the authors' code or torchvision's recipe uses; all "
        "default to off, so a paper config sets them explicitly.",
        keys=('datasets.<name>.cutmix_alpha', 'datasets.<name>.mixup_alpha', 'datasets.<name>.resized_crop_scale', 'datasets.<name>.rotation_degrees', 'datasets.<name>.contrast', 'datasets.<name>.erasing_p'),
    ),
    Reading(
        "Regression exit criterion",
        "paper B Tables 2 and 14, §4.1",
        "(paper B reports STS-B at budgets, Table 2/14, but names no criterion, and its released code"
        " has no regression): PABEE's regression rule (Zhou et al., 2020), patience 1 — exit at head "
        "h when |y_h − y_(h−1)| ≤ τ, τ swept like a threshold (`regression_patience`; head 1 has no "
        "predecessor, so it never exits there, as in PABEE: its score is −∞, \"never ready\", and the "
        "sweep's fastest point has every sample at head 2). Early stopping on regression tracks "
        'the validation MSE (§4.1: "loss for regression tasks").',
        keys=('criteria.<name>.criterion',),
    ),
    Reading(
        "Exits a criterion forbids",
        "paper A §3 (hybrid and rank-patience strategies)",
        ": a score of −∞ means \"never ready\": no threshold, not even −∞, lets a sample exit at such a "
        "head. The hybrid scores −∞ until the ranking has agreed for `patience` heads (head 1 always), "
        "rank-patience below its smallest patience; read literally as \"score ≥ t\", the sweep's first "
        "point (t = −∞) would put every sample at head 1, a point the criterion forbids, and B_EE would "
        "compare it with static head 1. The sweep has no such point: its fastest point has each sample "
        "at the first head it may exit at, and the speed-up curve's area starts there.",
        keys=(),
    ),
    Reading(
        "Single-label F1",
        "paper A §4 (F1 and accuracy), Figs 2–3",
        '(paper A reports "F1 score (averaged over all instances) and accuracy score" for every '
        "dataset): with one true and one predicted label per sample, the sample-averaged F1 is 1 on a "
        "match and 0 otherwise, so single-label F1 *is* accuracy, exactly. A B_EE figure whose lines "
        "are all single-label draws one panel, \"Accuracy = F1\" (its CSV keeps both metrics); one with"
        " a multi-label line draws both.",
        keys=('figures.<name>.metrics',),
    ),
    Reading(
        "B_EE of a lower-is-better metric",
        "paper A §3 (B_EE)",
        "is P_static − P_ee, so positive still means the early exits help (paper A defines it for "
        "classification only).",
        keys=(),
    ),
    Reading(
        "CIFAR at another `image_size`",
        "paper B App. E.8 (ViT-B/16)",
        "(ViT-B/16 at 224): the crop, flip and per-image augmentations run at 32 px, then each image "
        "is resized (bilinear, antialiased); random erasing acts on the resized image.",
        keys=('datasets.<name>.image_size',),
    ),
    Reading(
        "A suite's resources",
        "neither paper (this project's suites of paper configs)",
        ": a setting two files share keeps the first file's resources (they never change a result); "
        "its training and data must be identical.",
        keys=('resources', 'models.<name>.resources'),
    ),
    Reading(
        "Rank-patience",
        "paper A §3, §4.2",
        "(paper A §3, §4.2 give no formula): head h agrees with head h−1 when the nDCG *loss* 1 − "
        "nDCG (relevances: head h−1's probabilities; ranking: head h's logits; sklearn's "
        '`ndcg_score`, ties averaged) is below `tolerance` ("nDCG scores values below {0.001, …, '
        "0.15}\"), or when Kendall's τ-b of the two heads' logits is at least `tolerance` ({0.7, …, "
        "0.95}); a sample exits at the first head where the streak of agreements reaches the patience "
        "t, and the operating points are paper A §4.2's t ∈ {2, …, 6} (`patiences`, default [2, 3, 4, "
        "5, 6]; null sweeps every t from 0, everyone at head 1, to H−1) plus every sample at the last "
        "head. A streak is at most H−1, at the last head, so t ≥ H−2 exits early nowhere before it: "
        "the default CNN's 4 heads have one early point, t = 2 (t = 3, …, 6 are all \"every sample at "
        "head 4\"); the paper's 16-head ResNet-50 has all five. So on the default CNN no point lies near "
        "heads 1–2, and their E_closest is the t = 2 point (E ≥ 3): B_EE there compares a deeper exit with an "
        "early static head and is positive by construction (default run: +15 to +32 pp on average, where "
        "confidence is −6). Without a `tolerance` a setting takes "
        "0.01 (nDCG) or 0.9 (Kendall). **Hybrid**: the confidence (or entropy) score once the ranking "
        "has agreed for `patience` heads, −∞ before (PCEE-BERT counts consecutive confident layers "
        "instead).",
        keys=('criteria.<name>.agreement', 'criteria.<name>.tolerance', 'criteria.<name>.patience',
              'criteria.<name>.patiences'),
    ),
    Reading(
        "Composite multi-label images",
        "paper A §4.2",
        '(paper A §4.2: "combine images from m randomly chosen categories", not saying how): a 2×2 '
        "mosaic, m ∈ {2, 4} images of distinct classes in random cells, each resized to a cell, the "
        "rest empty (`digits_composite` offline, `imagenet_composite` at paper scale, made per item "
        "from the files); composites of each split use that split's base images only.",
        keys=('datasets.<name>.m_values',),
    ),
    Reading(
        "COCO's splits and empty images",
        "paper A §4.2 (COCO)",
        ": test annotations are not public, so the official val set is the test split and validation "
        "is held out of train (`val_fraction`, not given by paper A); an image without annotations "
        "keeps an all-zero label (dropping it would change COCO's image set); crowd annotations count"
        " unless `skip_crowd`.",
        keys=('datasets.<name>.val_fraction', 'datasets.<name>.skip_crowd'),
    ),
    Reading(
        "Learned exit",
        "paper A §3, eq. (1)–(2)",
        "(paper A eq. (1)–(2)): one logistic classifier per head on that head's logits (standardised "
        "per head), fitted with the main model frozen on the *validation* split's cached logits (the "
        "cache holds val and test; training-split logits of a trained model are overconfident), "
        "target 1 where the head is right (argmax, or the exact label set); head index h counted from"
        " 0 in the weight 1/(h+1), which is *inert*: each head has its own classifier and Adam's step "
        "is invariant to a constant gradient scale (up to its ε), so weighted and unweighted fits "
        "agree to 1.2e-7 (a test measures it; the hinge alternative's differ by 1e-2). Its operating "
        "point is threshold 0.5 (§4.2, Fig. 5: one point per setting; a score of exactly 0.5 exits): "
        "a B_EE figure shows that point, at the static head nearest its average exit head (the deeper"
        " at a tie), unless `learned_exit_point: nearest_to_head` reads its whole threshold sweep as "
        "the threshold criteria's. `alpha` (not given by the paper) defaults to 0.5; `loss: bce | l1 "
        "| hinge` are the alternatives paper A names.",
        keys=('criteria.<name>.alpha', 'criteria.<name>.loss', 'figures.<name>.learned_exit_point'),
    ),
    Reading(
        "The performance–speed-up curve and its area",
        "paper A §3",
        '(paper A §3: "the area under this curve"): the curve is the achievable envelope — at '
        "speed-up s, the best performance among the operating points with speed-up ≥ s, a step "
        "function — and the area its integral from the slowest to the fastest point. A trapezoid "
        "between sparse points would credit a criterion for performance it never delivers: on the "
        "default composites, rank-patience by Kendall's τ ≥ 0.9 has two points (all at head 1, F1 0; "
        "all at the last head), and the trapezoid gave it ten times confidence's area.",
        keys=(),
    ),
    Reading(
        'The "p ≤ 0.05" of paper A',
        "paper A §4 (Figs 2–3)",
        "is computed as a one-sided Mann–Whitney U test (rank-based: B_EE values are bounded and "
        "skewed; the compared lines are independent runs, not pairs) over every head, setting and "
        "seed.",
        keys=(),
    ),
    Reading(
        "Softmax multi-label heads",
        "paper A §4.2",
        "(`task: multi_label_softmax`): trained with cross-entropy against the label set as a uniform"
        " distribution over its labels; a label is positive when its softmax probability is ≥ "
        "`positive_threshold`, a parameter of the criterion setting (default 0.1; paper A sweeps "
        "{0.01, …, 0.3}), so one trained model serves every threshold. Its confidence is the smallest"
        " positive probability, its entropy the softmax's.",
        keys=('models.<name>.task', 'criteria.<name>.positive_threshold'),
    ),
    Reading(
        "Static baselines of the softmax variant",
        "paper A §4.1-4.2",
        '(paper A §4.1: each head "fine-tuned independently on a designated dataset, resulting in H '
        "distinct static models\"; silent on whether they change with the early-exit model's output layer): "
        "each setting is compared with static models of its own output layer and loss, so a softmax "
        "variant's B_EE is measured at the same positive threshold on both sides and isolates early "
        "exiting. `static_baseline: <model>` lends another setting's static models instead (one baseline "
        "per dataset); measured on the default composites, the softmax variants then gain up to +20 pp "
        "F1 at head 2 from the threshold alone (sigmoid static models at 0.5 vs softmax thresholds), "
        "and Fig. 3's multi-label line rises above the single-label one (p = 0.69 instead of 0.004).",
        keys=('models.<name>.static_baseline',),
    ),
    Reading(
        "Gradient dominance",
        "paper B §3.1",
        "(paper B §3.1, `training.gradient_dominance_every: N`): every N steps of a phase, GD_i = "
        "cos(g_i, g_total) on the backbone's *trainable* parameters (the heads' own get no gradient "
        "from the other heads), g_i the gradient of head i's term of the loss as the regime weights "
        "it (cosine ignores the weight's scale), g_total that of the loss the step backpropagates "
        "(GPF's auxiliary term and gradient equilibrium's hooks included). Extra `autograd.grad` "
        "calls only: the trained model is bit-identical (test). A phase that freezes the backbone "
        "(disjoint's second) logs nothing; phase-1 runs never log (one loss: GD is 1), so a setting "
        "that logs shares cnn's phase 1. Single-process training only (DDP's reducer).",
        keys=('training.gradient_dominance_every',),
    ),
    Reading(
        "Numerical rank",
        "paper B §3.3, eq. (5)",
        '(paper B §3.3, eq. 5, "n samples, m features"; no tolerance given; it cites Masarczyk et al.'
        ' 2024, "The tunnel effect"): A = one flattened block output per test image (`rows: '
        "samples`), mean-centred, and the rank counts the principal directions whose variance is "
        "above `variance_rtol` × the largest, i.e. the numerical rank of A's covariance (eigenvalues "
        "= centred singular values squared). The tolerance 1e-3 is the tunnel effect's as two public "
        "reproductions of it compute it (the mean-centred [samples, features] matrix, 8000 random "
        "features of large layers, 1e-3 of the largest singular value of the covariance; the paper's "
        "own text was not available here, and one of the two applies 1e-3 to the singular values of A"
        " instead). We state it on variances because that reading is the informative one: on A's "
        "singular values (1e-3 of σ_max = 1e-6 of the variance) every block of the default CNN wider "
        "than its 360 test images is 359 (capped by the images), and with rows = positions ([images ×"
        " positions, channels], the previous default, `rows: positions`) every block is its channel "
        "count, in every regime. On variances the rank barely depends on the number of images "
        "(backbone block 1: 160, 175, 178 directions from 360, 1077, 1797 digits). The figure shows "
        "`variance_rtol: [0.001, 0.01]`, one panel each (the CSV's `variant` column), so the reader "
        "sees what the tolerance decides. No feature subsampling: at paper scale (block outputs of "
        "10⁴–10⁵ features, 500 samples) the rank is at most samples − 1, so raise `samples`.",
        keys=('analysis.numerical_rank.variance_rtol', 'analysis.numerical_rank.rows', 'analysis.numerical_rank.samples'),
    ),
    Reading(
        "Mutual information I(X; Z)",
        "paper B §3.4",
        '(paper B §3.4: "Monte Carlo sampling", citing Shwartz-Ziv & Tishby 2017): `estimator: kde` '
        "(default), the noisy-representation estimate of Saxe et al. (2018) with Kolchinsky & "
        "Tracey's (2017) pairwise-distance (KL) upper bound: Z + ε, ε ~ N(0, σ²I), X uniform over the"
        " test images, I ≈ −(1/n) Σ_i log (1/n) Σ_j exp(−‖z_i − z_j‖² / 2σ²) (`bound: lower`: the "
        "Bhattacharyya bound, the same sum at 4σ²). Paper B's own estimator, binning (`estimator: "
        "binning`, `bins: 30`), is exactly log n at every block and regime of the default CNN (5.886 "
        "= log 360: each image its own pattern of bins over 256–1024 units), so it cannot show Fig. "
        "5's differences. σ² = `noise` × the layer's total variance tr Cov(Z) (default 0.25: σ = half"
        " the layer's RMS radius): a noise per unit saturates at log n too (pairwise distances grow "
        "with the units; log 360 at every block even at 10 × the mean per-unit variance), whereas "
        "relative to tr Cov(Z) the estimate is invariant to the layer's scale (BatchNorm) and to "
        "duplicated units, and at most 1/`noise` = 4 nats (Jensen), below log n, so it measures how "
        "the images cluster at that resolution rather than how many there are (within 1 % on the 1077"
        " training images instead of the 360 test images; at noise 0.1 the estimates sit at 4–5.4 "
        "nats near log 360 and grow with the images). Tested on k separated groups (log k), identical"
        " representations (0), a Gaussian whose estimate has a closed form (converges to it and "
        "brackets the true I), and the invariances and bounds.",
        keys=('analysis.mutual_information.estimator', 'analysis.mutual_information.noise', 'analysis.mutual_information.bound', 'analysis.mutual_information.bins'),
    ),
    Reading(
        "Mode connectivity",
        "paper B §3.2, eq. (4), Fig. 3",
        "(paper B §3.2, eq. 4, Fig. 3; `eebench.analysis.connectivity`): of a figure's pair `[A, B]` "
        "(same model entry and seed), B is aligned to A: Π\\* = argmin ||Θ_A − ΠΘ_B||_F by weight "
        "matching (Ainsworth et al.'s Algorithm 1: coordinate descent over permutation groups, a "
        "`linear_sum_assignment` per step, from the identity, stopping after a pass without "
        "improvement) over Θ = every parameter, backbone and heads (BN running statistics are "
        "permuted with their channels but not matched: buffers, not Θ). λ takes `points` values "
        "evenly spaced in [0, 1], ends included (default 11; the paper gives no grid). At every λ, "
        "the ends too, BatchNorm's running statistics are reset and recomputed on the first `samples`"
        " training images (momentum None, i.e. the mean over batches of each batch's mean and "
        "unbiased variance; BN layers in train mode, the rest in eval mode, no gradients), since "
        "interpolated weights match neither model's statistics; `reset_bn: false` interpolates the "
        "statistics instead. Loss and accuracy are then measured in eval mode on the first `samples` "
        "images of the training *and* the test split (Fig. 3 does not name its split; the figure "
        "draws both). **Loss of a multi-exit model**, here and in the landscape: each head's training"
        " loss (the task's: cross-entropy for single-label) averaged over the samples, and the total "
        "= the unweighted sum over heads (eq. 2 with α_k = 1, whatever loss scaling the run trained "
        "with); the total's accuracy is the heads' mean. **Permutation specs** "
        "(`eebench.analysis.permutation`, registries by backbone and by IC type): `cnn` one group per"
        " block; `resnet20` one group per stage along the residual path and one per block's inner "
        "channels, as Ainsworth et al.'s ResNet-20 — where option A's shortcut zero-pads, the new "
        "stage's channels are the old stream's (same groups, shifted) between the padded channels, "
        "which form a new group, so a stage-3 channel may follow stage 1's permutation; option B's "
        "projection starts a new group. A head reads a block's output, so its first layer's input "
        "axis follows that block's permutation (an MLP head's hidden units are groups of their own; "
        "SDN's pooled map moves its pool_size² entries per channel together). A figure on a network "
        "without a spec (or with GPF's merged ICs) fails at DAG build, naming the figure and the "
        "backbone or IC type. The CSV's `distance_before` / `distance_after` are ||Θ_A − Θ_B||_F and "
        "||Θ_A − Π\\*Θ_B||_F. In the default run they are equal: the regimes of one seed start from the"
        " same initial weights (see *Initialisation*), so their units stay aligned and Π\\* is the "
        "identity (a randomly permuted copy of a trained checkpoint is matched back to it exactly).",
        keys=('analysis.mode_connectivity.points', 'analysis.mode_connectivity.samples', 'analysis.mode_connectivity.reset_bn', 'analysis.mode_connectivity.splits'),
    ),
    Reading(
        "Loss landscape",
        "paper B App. B, eq. (6), Fig. 6",
        "(paper B App. B, eq. 6, Fig. 6; `eebench.analysis.landscape`): δ, η Gaussian over every "
        "parameter, backbone and heads, one pair for all heads, drawn from `direction_seed` (δ "
        "first), filter-normalised as Li et al. (2018): each slice along a weight's first axis (a "
        "conv filter, a linear layer's row) rescaled to the norm of θ\\*'s same slice; one-dimensional "
        "parameters (biases, BN weights and biases, SDN's α) get zero, as Li et al.'s code with "
        "`ignore='biasbn'` (the setting of their 2-D plots), so they stay at θ\\*. BN's running "
        "statistics are not in the directions and the loss is evaluated in eval mode with θ\\*'s "
        "statistics, as Li et al.'s `evaluation.eval_loss` (`net.eval()`). Grid: `span` × [−1, 1] on "
        "both axes at `points` per axis (default 11 × 11 on [−1, 1]²; the paper gives none; Li et al."
        " plot 51 × 51), the centre exactly θ\\*; loss on the first `samples` training images, never "
        'augmented ("training loss landscapes"). Each model is filter-normalised against its own θ\\*,'
        " so a panel per regime, one seed.",
        keys=('analysis.loss_landscape.direction_seed', 'analysis.loss_landscape.span', 'analysis.loss_landscape.points', 'analysis.loss_landscape.samples'),
    ),
    Reading(
        "Paper A Fig. 6's exit rule",
        "paper A Fig. 6",
        '("if the classifier recognizes its class as present, it exits at the current head"): a '
        "binary model is a one-output sigmoid head per exit (`classes: [k]` on a multi-label dataset:"
        " the same images, that label column), and exits at the first head whose sigmoid is ≥ 0.5 — "
        "the `confidence` criterion at threshold 0.5, configurable (`criterion`, `threshold`); a "
        "model that never recognises its class stops at its last head. Only the models whose class "
        'the example holds are drawn (the others are blank); "same layer" (orange) is two such models'
        " exiting at one head; the red frame marks the example whose classes' exit heads lie furthest"
        " apart. The figure checks that all models were tested on the same images (a fingerprint of "
        "the prepared test inputs, stored in each logit cache).",
        keys=('datasets.<name>.classes', 'figures.<name>.criterion', 'figures.<name>.threshold'),
    ),
    Reading(
        "Paper A's spread over hyper-parameters",
        "paper A Figs 2–3",
        '(Figs 2–3: "models trained with different learning rates"): a learning-rate grid as model '
        "entries, pooled by B_EE lines (entries with the same `label` pool too: Fig. 3's multi-label "
        "line pools the sigmoid and softmax variants and their criteria), one run each (`seeds: [0]` "
        "on the figure). The default config's grid is {1e-2, 1e-3}, a decade apart as the paper's: its "
        "digits CNN trains from scratch (to early stopping; 1e-2 is the default's rate, see \"The "
        "miniature\"), and paper A's {1e-3, 1e-4, 1e-5} is for fine-tuning a pre-trained ResNet-50.",
        keys=('training.lr', 'figures.<name>.seeds'),
    ),
    Reading(
        "Paper A at paper scale",
        "paper A §4 (experimental setup)",
        "(`config/paper/a_fig*.yaml`; paper A gives the backbone and the lr grid only): torchvision's"
        " IMAGENET1K_V1 ResNet-50 weights; SDN ICs (the heads of its refs [5, 12]) after every "
        "bottleneck block but the last (16 heads: Fig. 4's patience up to 6 needs them); joint "
        "training from the pre-trained weights, batch 128, AdamW without weight decay, at most 100 "
        "epochs with early-stopping patience 10; Fig. 2's class counts 2, 10, 100, 1000 as nested "
        "random subsets (wnids listed in the file); the composites use Fig. 2's 10-class subset, so "
        "Fig. 3 compares single- and multi-label ImageNet on the same classes; COCO 2014; Fig. 5 "
        'draws both confidence and entropy (the "best baseline" is known only after the runs) and the'
        " learned exit per α ∈ {0.1, …, 0.9}, as its whole threshold sweep's nearest point to each "
        "head (paper A plots the 0.5 point); Fig. 6's ten VOC classes are ones that often share an "
        "image (person, car, bicycle, motorbike, bus, dog, chair, dining table, sofa, bottle).",
        keys=(),
    ),
    Reading(
        "Real exiting of GPF",
        "paper B Table 3 (GPF)",
        "(`eebench.inference`): IC i's logits come from ICs 0..i through the merge module (GPF "
        "imitates the later states), so a GPF model really exits too.",
        keys=(),
    ),
    Reading(
        "GPF's loss weights",
        "paper B Table 3 (GPF; its code, `methods/early_exit.py:216-222`)",
        ": paper B's code weights head i of K (the final included) by (i+1) / (K(K+1)/2) and adds the "
        "imitation loss with weight 1. Ours (the default `cnn_gpf`, `loss_scaling: increasing`) weights head k "
        "by k/K, whose weights sum to (K+1)/2 instead of 1: the same shape, but the imitation loss is (K+1)/2 "
        "times weaker against classification (4 times with K = 7), so the two are not the same up to a constant "
        "factor. `training.gpf_loss_weights: authors` uses the authors' weights exactly (`loss_scaling` unset, "
        "constant or increasing); they apply to the heads of the step's loss set, so a frozen final head's "
        "constant loss, which their code keeps in the sum, only drops out. GPF has no static per-head form, so "
        "it cannot feed B_EE.",
        keys=("training.gpf_loss_weights", "training.loss_scaling"),
        alternative="ours (`gpf_loss_weights: ours`, the default): the imitation loss weighs 1 against "
        "classification weights summing to (K+1)/2",
    ),
    Reading(
        "Early stopping",
        "paper B §4.1; its code, `methods/early_exit.py:15-55, 255`, `train.py:24-54, 282`",
        "(paper B §4.1: per-head best tracking; the details are its code's): ours stops a phase once no "
        "scored head improved its best validation score for `patience` epochs and ends on the weights of the "
        "last epoch at which one did, at the epoch cap too. `training.early_stopping: authors` is the code's: a "
        "patience counter per head that a better score resets, a worse one increments and a tie (score equal to "
        "the head's best) leaves alone (`min_delta` 0, l. 29-42); the weights are saved whenever some head "
        "improved (l. 44-46); the phase stops only once every head's counter reached `patience` (l. 51), and "
        "only then are the saved weights restored (l. 52-53), so a phase ended by its epoch cap keeps its last "
        "weights. Phase 1 (`train.py`) checks once per epoch; a phase that trains ICs every min(epoch, 300) "
        "batches (l. 255), counted from the phase's start (their counter runs over their phases 2 and 3 "
        "together), so `patience` counts checks. A tie never counts, so a head whose score stays equal (a "
        "frozen final head scored by accuracy) never becomes stale and the phase runs to its cap. The paper "
        "configs use ours (`fidelity: paper`): paper B §4.1 describes per-head best tracking with one patience "
        "(\"none of the exits achieve an improved performance\" over n epochs), which is ours; "
        "`fidelity: authors_code` switches to theirs.",
        keys=("training.early_stopping", "training.patience"),
    ),
    Reading(
        "The authors' validation split",
        "paper B §4.1; its code, `train.py:119-121`, `utils.py:655-665`, `common.py:93-94`, `datasets.py:56`",
        ": paper B's code holds out a stratified 10% of the training set (sklearn `train_test_split`, "
        "`test_size` 0.1, `random_state` 42 whatever the run's seed) and draws it from the training dataset "
        "object, whose transform is the training augmentation (random flip and affine on CIFAR), so the "
        "early-stopping scores are measured on augmented images, drawn anew at every check (Mixup/CutMix, "
        "applied in the loop, are not). Ours holds out `val_fraction` of the training data with `split_seed` "
        "and scores it as it is; `training.validation_augment: true` (set by `fidelity: authors_code`) scores "
        "it with the training augmentation, as theirs (the cached val logits stay unaugmented). Their 10% and "
        "seed 42 are `val_fraction: 0.1` and `split_seed: 42` in a config.",
        keys=("training.validation_augment", "datasets.<name>.val_fraction", "datasets.<name>.split_seed"),
    ),
    Reading(
        "Label smoothing",
        "paper B App. E; its code, `train.py:225-230`, `methods/early_exit.py:162-168`, `utils.py:68-73`",
        ": paper B's code smooths the targets by 0.1 whenever Mixup or CutMix is on (`mixup_smoothing` "
        "defaults to 0.1 and is folded into the mixed one-hot targets: off = s/C, on = 1 - s + s/C), and by the "
        "cross-entropy's own `label_smoothing` otherwise (0.0 in its scripts). Ours does not smooth unless "
        "`training.label_smoothing` is set: then single-label cross-entropy trains on (1 - s) y + s/C, for a "
        "class index and a Mixup/CutMix soft target alike, which equals smoothing each label before mixing.",
        keys=("training.label_smoothing",),
        alternative="0.1 with Mixup/CutMix on, as the authors' runs",
    ),
    Reading(
        "Gradient clipping",
        "paper B App. E; its code, `methods/early_exit.py:237-238`, `scripts/vit_imagenet.py:78`",
        ": paper B's ViT scripts clip the gradient norm to 1.0 (`clip_grad_norm`, also "
        "`scripts/pretrained_vit_cifar100_finetuning.py:63`), its ResNet scripts do not. Ours does not clip "
        "unless `training.grad_clip_norm` is set: then the trainable parameters' total norm is clipped before "
        "each optimiser step (`torch.nn.utils.clip_grad_norm_`).",
        keys=("training.grad_clip_norm",),
        alternative="1.0 for ViT runs, as the authors'",
    ),
    Reading(
        "Activation inside two-layer ICs",
        "paper B App. E; its code, `architectures/early_exits/heads.py:126, 159`",
        ": paper B's multi-layer ViT and Swin heads apply GELU between their layers; its CNN heads have no "
        "hidden layer. Our `mlp` IC uses ReLU unless `ic.activation: gelu`.",
        keys=("models.<name>.ic.activation",),
        alternative="GELU, as the authors' ViT heads",
    ),
    Reading(
        "Sum or mean over heads",
        "paper B eq. (2)-(3); its code, `methods/early_exit.py:215-231`",
        ": eq. (2)/(3) sum the heads' weighted losses; paper B's code divides the sum by the number of heads "
        "(every head is in its loss, the final included) and adds an auxiliary loss after. Ours sums; "
        "`training.head_loss_reduction: mean` divides by the number of heads in the step's loss set: the code's "
        "divisor K where that set is every head, K - 1 in `disjoint` (the ICs' losses), where the code divides "
        "by K with the frozen final head's constant loss in the sum. Under AdamW a constant factor on the whole "
        "loss changes little (the update is nearly scale-invariant); it matters against an unweighted auxiliary "
        "loss (GPF's imitation loss, see GPF's loss weights) and against `grad_clip_norm`.",
        keys=("training.head_loss_reduction",),
        alternative="the mean, as the authors' code",
    ),
    Reading(
        "The regenerated paper's order",
        "paper B §1-4.7, App. A-D; paper A §3-4.3",
        "(`paper/body.tex`): paper B first, then paper A, each in its own section order; an entry sits in the "
        "section holding the first item of its `regenerates`. Fig. 1 of paper B (the introduction's "
        "performance-cost plot) opens §4.3's items, beside Tables 1-4, 8-18 and Figs 7-17; Appendix B's loss "
        "landscapes (Fig. 6) follow §3's analyses; the speed-up curves and their areas are paper A §3 (no figure "
        "number); the training-time table is paper B §4.7 (no table in the paper). Entries that regenerate "
        "nothing go to \"Beyond the papers\", claims tables last.",
        keys=("tables.<name>.regenerates", "figures.<name>.regenerates"),
    ),
    Reading(
        "Qualitative claims made testable",
        "paper A §4.2-4.4 (Figs 3, 6); paper B §3-4.7 (Figs 2-5, Tables 5-6)",
        "(`eebench.claim_checks`, checked on the tables' and figures' numbers): \"predominantly positive\" B_EE = "
        "positive mean F1 B_EE at more than half of the heads; \"significantly\" = one-sided Mann-Whitney U "
        "p ≤ 0.05 (the B_EE figure's `p_below_first`); \"rare\" same-layer exits = at most 10% of the shown "
        "examples have two present classes exiting at the same head; \"the last IC dominates the most in the "
        "mixed regime\" = its gradient dominance, averaged over the logged steps, is the largest of mixed's "
        "heads and above joint's last head; \"disjoint and mixed in one basin, joint in another\" = the "
        "test-loss barrier of the disjoint-mixed path below both pairs with joint; \"the rank increases when "
        "the ICs affect the backbone\" = joint's and mixed's rank, averaged over blocks, above the plain "
        "network's (at the first tolerance listed); the shift of I(X; Z) = with ICs, higher than the plain "
        "network at the first block and lower at the last; \"the improvements in the mixed regime are notably "
        "smaller\" (loss scaling) = every scaling variant's difference from constant weights, averaged over "
        "the budgets, smaller in mixed than in joint; gradient equilibrium \"enhances joint, does not benefit "
        "mixed\" = the variant labelled GE gains on average in joint and not in mixed; larger ICs \"yield clear "
        "gains\" under disjoint \"especially at lower budgets\" and the trend \"reverses\" in mixed = at the "
        "lowest budget every larger IC gains and gains most in disjoint, and on average it does not gain in "
        "mixed; training time = epochs (phase 1 included) disjoint < mixed < joint.",
        keys=("tables.<name>.checks",),
    ),
    Reading(
        "Claims on the papers' own numbers",
        "paper B §4.3-4.7, App. A, Tables 1-6, 8-10, 13-14; paper A §4.2-4.4 (Figs 3, 4, 6)",
        "(`eebench.claims.on_paper`, the claims table's Paper column): each claim's check also runs on the values "
        "the paper prints (`eebench/paper_numbers`) in the items its `paper_tables` name, one setting at a time (a "
        "row group of Tables 1-3, else a whole table). The paper's verdict holds where the check holds in every "
        "setting that has the numbers it needs, does not hold where it fails in any (k of n shown), and is not "
        "evaluable where no setting has them. §4.3's two claims are read on Tables 1-4 (§4.3 says them of Table 1 "
        "and calls Tables 2-4 consistent; Tables 8-18 repeat those means with stds, so they are not counted "
        "again), Appendix A's on Tables 8, 9, 10, 13 and 14 (the only ones printing the alternative regimes), loss "
        "scaling on Table 5, IC size on Table 6 as gains over its 1L row (Table 20, a head-size setting §4.5 does "
        "not cite, is not read), training time on §4.7's epochs; the STS-B values (Tables 2, 14) are an MSE, lower "
        "is better. A claim at 25% is not evaluable in Table 4, which has no 25% column (its first is 35%). Claims "
        "on paper A's figures and on paper B's Figs 2-5 are not evaluable: no values are printed. On the papers' "
        "own numbers three claims fail in one setting each: disjoint weakest at 25% (STS-B, Table 2: MSE "
        "disjoint 2.37, joint 1.70, mixed 2.43; holds in 10 of 11), mixed-gradual ≥ mixed (20 Newsgroups, "
        "Table 13: 81.35 vs 85.25 at 75% and 100%; 4 of 5), alternating below mixed (STS-B, Table 14: MSE 0.51 "
        "vs mixed's 0.53 at 75%, 0.50 vs 0.51 at 100%; 4 of 5).",
    ),
)


# Rendering -------------------------------------------------------------------------------------------------

MARKDOWN_WIDTH = 110

# Inline markup: `code`, **bold**, *emphasis*, \* (a literal asterisk); the rest is text.
_TOKEN = re.compile(r"`(?P<code>[^`]+)`|\*\*(?P<bold>.+?)\*\*|(?<![\\\w])\*(?P<em>[^*\s](?:[^*]*?[^*\s\\])?)\*(?!\w)"
                    r"|\\(?P<escaped>\*)")


def latex_markup(text: str) -> str:
    """A text with the inline markup above as LaTeX."""
    out, at = [], 0
    for match in _TOKEN.finditer(text):
        out.append(latex_escape(text[at:match.start()]))
        if match["code"] is not None:
            out.append(r"\texttt{" + latex_escape(match["code"]) + "}")
        elif match["bold"] is not None:
            out.append(r"\textbf{" + latex_markup(match["bold"]) + "}")
        elif match["em"] is not None:
            out.append(r"\emph{" + latex_markup(match["em"]) + "}")
        else:
            out.append("*")
        at = match.end()
    out.append(latex_escape(text[at:]))
    return "".join(out)


def _sentence(reading: Reading) -> str:
    joint = "" if reading.text.startswith((":", ",")) else " "
    return f"**{reading.title}**{joint}{reading.text}"


def _keys_markdown(keys: tuple[str, ...]) -> str:
    return ", ".join(f"`{key}`" for key in keys)


# A continuation line must not start a Markdown block (a list item, a heading, a quote, a table row).
_BLOCK_START = re.compile(r"[-+*#>|]|\d+[.)]$")


def _wrap(item: str) -> str:
    """``item`` as one bullet of lines at most MARKDOWN_WIDTH wide (a longer word stays whole), never breaking
    before a word that would start a Markdown block."""
    lines: list[list[str]] = [[]]
    width = 2  # "- " or "  "
    for word in item.split():
        if lines[-1] and width + 1 + len(word) > MARKDOWN_WIDTH and not _BLOCK_START.match(word):
            lines.append([])
            width = 2
        width += len(word) + (1 if lines[-1] else 0)
        lines[-1].append(word)
    return "\n".join(("- " if i == 0 else "  ") + " ".join(words) for i, words in enumerate(lines))


def markdown(readings: tuple[Reading, ...] = READINGS) -> str:
    """The README section's body: one bullet per reading, then its source and config keys."""
    items = []
    for reading in readings:
        item = _sentence(reading)
        if reading.alternative:
            item += f" Alternative: {reading.alternative}"
        tail = f"Source: {reading.source}."
        if reading.keys:
            tail = f"Source: {reading.source}; config: {_keys_markdown(reading.keys)}."
        item += f" [{tail}]"
        items.append(_wrap(item))
    return "\n".join(items) + "\n"


def latex(readings: tuple[Reading, ...] = READINGS) -> str:
    """``paper/readings.tex``: a section with one item per reading, its source and its config keys."""
    lines = [
        "% Generated by `eebench readings --format latex` from eebench/readings.py; do not edit.",
        r"\section{Deviations and readings}",
        r"\label{sec:readings}",
        "Every place where the two papers are silent or inconsistent, the reading this project takes, and the "
        "configuration key that switches it where one exists.",
        r"\begingroup\sloppy  % long code names (config keys, file names) do not hyphenate",
        r"\begin{itemize}",
    ]
    for reading in readings:
        item = r"  \item " + latex_markup(_sentence(reading))
        if reading.alternative:
            item += " Alternative: " + latex_markup(reading.alternative)
        item += r" \emph{Source:} " + latex_markup(reading.source) + "."
        if reading.keys:
            item += r" \emph{Config:} " + ", ".join(r"\texttt{" + latex_escape(key) + "}" for key in reading.keys) + "."
        lines.append(item)
    lines += [r"\end{itemize}", r"\endgroup"]
    return "\n".join(lines) + "\n"


FORMATS = {"markdown": markdown, "latex": latex}


def render(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown readings format {fmt!r}; valid: {', '.join(FORMATS)}")
    return FORMATS[fmt]()
