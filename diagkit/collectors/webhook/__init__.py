"""The webhook probes: `webhook` (one test delivery as senders make it) and `webhook-signature` (does a delivered request verify with this secret?)."""
