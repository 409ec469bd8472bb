"""Tables of the world half of `bench search-features` (filters, pages, threshold, terms, dedup, MMR, hostile)."""

from __future__ import annotations

from typing import Any

from evdsearch.plots import Table


def world_tables(w: dict[str, Any]) -> list[Table]:
    f, t, terms, d, h = w["filters"], w["threshold"], w["terms"], w["dedup"], w["hostile"]
    rows = [["filters: answers checked (5 filters x 20 queries x Flat, IVF, HNSW)", str(f["answers"])],
            ["filters: hits not matching the filter", str(f["wrong_hits"])],
            ["filters: answers with a count other than min(k, matches)", str(f["wrong_counts"])]]
    rows += [[f"pages of 10 up to 100 vs one top-100 call, {name}: mismatches / duplicates",
              f"{p['mismatches']} / {p['duplicates']} of {p['queries']} queries"] for name, p in w["pages"].items()]
    rows += [[f"threshold T = best score of an absent pair's query + 1e-4 (k = {t['k']})", f"{t['threshold']:.4f}"],
             ["absent pairs answer nothing at min_score T", str(t["absent_answer_empty"])],
             ["hits scoring below min_score T (of all hits at T)", f"{t['hits_below_threshold']} of {t['threshold_hits']}"],
             ["present pairs (<= k images) with every image in the top k at min_score T",
              f"{t['present_pairs_all_found']} of {t['present_pairs']}"],
             ["... with every image in the top k, no threshold (what retrieval allows)",
              f"{t['present_pairs_in_top_k']} of {t['present_pairs']}"],
             ["present pairs' images in their top k: at min_score T / no threshold",
              f"{t['present_images_found']} / {t['present_images_in_top_k']} of {t['present_images']}"],
             ["median rank of a present pair's last image (the k that holds it whole)", f"{t['median_last_rank']:g}"]]
    rows += [[f"red images in the top 20: {name}", str(value)] for name, value in terms.items()
             if name != "weight 0 equals plain"]
    rows += [["weight 0 equals the single-text query (ids and scores)", str(terms["weight 0 equals plain"])],
             [f"dedup of {d['copies']} jittered copies: best threshold", f"{d['best']['threshold']:g}"],
             ["dedup pair precision / recall there", f"{d['best']['precision']:.3f} / {d['best']['recall']:.3f}"],
             ["MMR diversity 0 equals plain top-k", str(d["mmr_0_equals_plain"])],
             [f"repeated copies in top-10 of {d['mmr_queries']} queries: plain / diversity 0.5",
              f"{d['repeated_copies_plain']} / {d['repeated_copies_mmr_0.5']}"],
             ["hostile filters (100-level nesting, 1 MB, unknown field, wrong type)", ", ".join(h["codes"])],
             ["server still SERVING after them", str(h["serving"])]]
    sweep = Table("Dedup sweep (pairs among original + 2 copies)", ["threshold", "precision", "recall", "pairs found"],
                  [[f"{s['threshold']:g}", f"{s['precision']:.3f}", f"{s['recall']:.3f}", str(s["pairs_found"])]
                   for s in d["sweep"]])
    held = ", ".join(" ".join(p) for p in w["held_out"])
    return [Table(f"Search options on the shapes world (held-out pairs: {held})", ["check", "result"], rows), sweep]
