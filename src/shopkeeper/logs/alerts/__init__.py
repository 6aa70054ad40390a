"""Alert rules on LogQL metric queries: evaluated by the schedulers, notified through the outbox."""
