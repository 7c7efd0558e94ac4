"""Sync guards that block (pure functions: easy to test, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GuardConfig:
    max_removal_pct: float = 20.0  # removals as a share of what the destination holds
    max_size_change_pct: float = 50.0  # desired size vs the size at the last sync
    block_empty_source: bool = True
    # consent withdrawals to propagate, as a share of the people the destination holds;
    # an unsubscribe can't be undone by segwise, so a mass of them (a broken CRM load
    # saying "no" for everybody) blocks until confirmed with --force. Never fewer than
    # min_revocations_blocked: a handful of withdrawals always goes through.
    max_revocation_pct: float = 10.0
    min_revocations_blocked: int = 25


def evaluate_guards(cfg: GuardConfig, desired: int, held: int, removes: int, min_size: int,
                    previous_size: int, revocations: int = 0, held_people: int = 0
                    ) -> list[str]:
    """Reasons to block this sync (empty list = go)."""
    reasons = []
    if cfg.block_empty_source and desired == 0 and held > 0:
        reasons.append(f"empty source: 0 members to sync but the destination holds {held}")
    if desired < min_size:
        reasons.append(f"segment below min_size: {desired} < {min_size}")
    if held and 100.0 * removes / held > cfg.max_removal_pct:
        reasons.append(f"removals {removes}/{held} = {100.0 * removes / held:.0f}% exceed "
                       f"{cfg.max_removal_pct:g}% of the destination list")
    if previous_size and abs(desired - previous_size) * 100.0 / previous_size > \
            cfg.max_size_change_pct:
        change = (desired - previous_size) * 100.0 / previous_size
        reasons.append(f"size change {previous_size} → {desired} ({change:+.0f}%) exceeds "
                       f"{cfg.max_size_change_pct:g}%")
    if (held_people and revocations >= cfg.min_revocations_blocked
            and 100.0 * revocations / held_people > cfg.max_revocation_pct):
        reasons.append(f"consent withdrawals {revocations}/{held_people} = "
                       f"{100.0 * revocations / held_people:.0f}% exceed {cfg.max_revocation_pct:g}% "
                       "of the people the destination holds (an unsubscribe can't be undone)")
    return reasons
