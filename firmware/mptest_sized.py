# mptest_sized: figures and needs a suite sizes to the board (beside mptest,
# which stays small enough for the micro:bit).
#
#   sized(full, small)   small where the host calls the board "slow" (an
#                        emulated chip: mptest.CAPS) unless it asks for the full
#                        figures ("long", MPALLOC_LONG=1); full elsewhere
#   need(cap, reason)    skip the test unless the board has cap, with the host's
#                        reason where it gave one (mptest.WHY, set by the runner:
#                        {"threads": "no threads (one core in rp2040js)"})
import mptest


def sized(full, small):
    c = mptest.CAPS
    if "slow" in c and "long" not in c:
        return small
    return full


def need(cap, reason):
    if not mptest.has(cap):
        mptest.skip(getattr(mptest, "WHY", {}).get(cap, reason))
