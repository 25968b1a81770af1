"""One colour and one name per recurrent type, everywhere (the report's plots and the search's)."""

TYPES = ("none", "lstm", "gru", "bilstm", "bigru")
LABELS = {"none": "CNN only", "lstm": "LSTM", "gru": "GRU", "bilstm": "BiLSTM", "bigru": "BiGRU"}
COLORS = {"none": "#444444", "lstm": "#1f77b4", "gru": "#2ca02c", "bilstm": "#d62728", "bigru": "#9467bd"}
WINDOW_STYLES = ("-", "--", ":", "-.")
