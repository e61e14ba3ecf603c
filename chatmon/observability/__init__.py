"""What chatmon tells its operators about itself: leaf modules any layer may import."""
