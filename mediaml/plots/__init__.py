"""Figure data, interactive charts and HTML reports (Altair + vl-convert); used by task=catalog."""
