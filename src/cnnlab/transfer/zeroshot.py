"""A 1,000-class ImageNet model used as it is on a folder whose classes are ImageNet classes.

The folder's class sub-folders must be WordNet ids (``n01440764`` = tench), as ImageNet's own
and Imagenette's are: each names one of the model's 1,000 outputs. Two scores come out:

* **top-1 over the folder's classes** -- the argmax over just those k outputs, i.e. the model
  as a k-way classifier (what a user whose photos are only ever these k things gets);
* **top-1 (and top-5) over all 1,000** -- the model's own answer, which may be a neighbouring
  ImageNet class (``barracouta`` for a tench).

The confusion matrix, per-class accuracy and worst images are the k-way ones, drawn as for a
trained run, into an output directory made by the one output policy.

>>> r = evaluate_pretrained("efficientnet_lite0.in1k", "imagenette-160", "runs/zero-shot")  # doctest: +SKIP
>>> r["test_accuracy"], r["top1_1000"]                                                       # doctest: +SKIP
(0.98..., 0.6...)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data.folder import list_classes, list_images, split_folders
from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_json_atomic
from cnnlab.report.evaluation import confusion_matrix, draw_confusion, draw_top_losses
from cnnlab.rundir import check_out_dir, open_run_dir
from cnnlab.runs import load_run
from cnnlab.transfer.pretrained import decode_for_weights, imagenet_wnids

CHUNK = 64  # images decoded and scored at a time


def folder_classes(root: Path, name: str) -> tuple[Path, list[str], list[int]]:
    """(the folder scored, its class names, their ImageNet indices): its test/val part if it has one."""
    if not root.is_dir():
        raise CnnlabError(f"--folder {root} is not a directory of class sub-folders")
    train, test = split_folders(root)
    alone = [root / n for n in ("test", "val") if (root / n).is_dir()]  # a val/ (or test/) with no train/ beside it
    folder = test or (alone[0] if alone and not (root / "train").is_dir() else train)
    classes = list_classes(folder)
    if not classes:
        raise CnnlabError(f"{folder} has no class sub-folders with images in them")
    wnids = imagenet_wnids()
    foreign = [c for c in classes if c not in wnids]
    if foreign:
        raise CnnlabError(f"{folder}: class folder(s) {', '.join(map(repr, foreign[:3]))} are not ImageNet WordNet ids "
                          f"(like n01440764), so {name}'s 1,000 classes cannot score them; fine-tune it instead: "
                          f"cnnlab train model.name={name.split('.')[0]} model.weights={name.split('.')[1]} "
                          f"data.name=folder data.root={root}")
    return folder, classes, [wnids.index(c) for c in classes]


def decode_folder(folder: Path, classes: list[str], cfg: dict,
                  limit: int | None = None) -> tuple[list[Path], torch.Tensor, torch.Tensor]:
    """(paths, uint8 images (N, 3, S, S), labels (N,)) decoded as the weights expect.

    ``limit`` keeps every n-th image of the sorted listing so that at most ``limit`` remain.
    """
    from concurrent.futures import ThreadPoolExecutor

    items = list_images(folder, classes)
    if limit is not None and limit < len(items):
        items = items[::-(-len(items) // limit)]

    def decode(item):
        try:
            return decode_for_weights(item[0], cfg)
        except Exception as exc:  # noqa: BLE001 -- Pillow raises many types for a broken file
            raise CnnlabError(f"cannot read image {item[0]}: {exc}") from None

    with ThreadPoolExecutor(max_workers=2) as pool:
        images = list(pool.map(decode, items))
    return ([p for p, _ in items], torch.from_numpy(np.stack(images)),
            torch.tensor([y for _, y in items], dtype=torch.int64))


@torch.no_grad()
def evaluate_pretrained(name: str, root: str | Path, out: str | Path, *, overwrite: bool = False,
                        top: int = 16, limit: int | None = None) -> dict[str, Any]:
    """Score ``name`` on the folder ``root`` and write ``eval.json``, ``confusion.png``, ``top_losses.png`` to ``out``.

    ``limit`` keeps every n-th image so that about ``limit`` remain (a quick look; None: all).
    """
    root = Path(root)
    check_out_dir(out, overwrite, kind="eval", inputs=[root])  # refused before any work: nothing is created
    folder, wnids, columns = folder_classes(root, name)  # checked before the weights load
    run = load_run(name)
    paths, images, labels = decode_folder(folder, wnids, run.pretrained_cfg, limit)
    mean = torch.tensor(run.mean).view(1, 3, 1, 1)
    std = torch.tensor(run.std).view(1, 3, 1, 1)
    logits = torch.cat([run.model((images[s:s + CHUNK].float() / 255 - mean) / std)
                        for s in range(0, len(images), CHUNK)])  # (N, 1000)
    index = torch.tensor(columns)
    local = logits[:, index]  # (N, k): the folder's classes only
    preds = local.argmax(1)
    truth = index[labels]  # the true class among all 1,000
    top5 = logits.topk(5, dim=1).indices
    names = [f"{w} {run.classes[i]}" for w, i in zip(wnids, columns)]
    matrix = confusion_matrix(labels, preds, len(wnids))
    per_class = (matrix.diag().float() / matrix.sum(1).clamp_min(1).float()).tolist()
    losses = F.cross_entropy(local, labels, reduction="none")
    worst = losses.argsort(descending=True)[:top]
    with open_run_dir(out, overwrite=overwrite, kind="eval", inputs=[root]) as out_dir:
        confusion_png = draw_confusion(matrix, names, out_dir / "confusion.png")
        top_png = draw_top_losses(images[worst], labels[worst], preds[worst], local.softmax(1)[worst], losses[worst],
                                  names, out_dir / "top_losses.png")
        report = {
            "model": name, "folder": str(folder), "count": len(labels), "classes": len(wnids),
            "test_accuracy": round(float((preds == labels).float().mean()), 4),  # k-way, over the folder's classes
            "top1_1000": round(float((logits.argmax(1) == truth).float().mean()), 4),
            "top5_1000": round(float((top5 == truth[:, None]).any(1).float().mean()), 4),
            "test_loss": round(float(losses.mean()), 4),
            "per_class_accuracy": dict(zip(names, [round(a, 4) for a in per_class])),
            "confusion_matrix": matrix.tolist(),
            "top_losses": [{"image": str(paths[int(i)]), "true": names[int(labels[i])],
                            "predicted": names[int(preds[i])], "imagenet_top1": run.classes[int(logits[i].argmax())],
                            "loss": round(float(losses[i]), 4)} for i in worst],
            "preprocessing": {k: run.pretrained_cfg[k] for k in ("input_size", "mean", "std", "interpolation",
                                                                   "crop_fraction")},
            "weights_sha256": run.pretrained_cfg["source"]["sha256"],
            "confusion_png": str(confusion_png), "top_losses_png": str(top_png),
        }
        write_json_atomic(out_dir / "eval.json", report)
    return report
