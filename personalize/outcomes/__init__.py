"""What recommendation blocks earn: exposures, clicks and conversions attributed, rollups."""
