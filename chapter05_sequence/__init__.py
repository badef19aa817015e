"""Chapter 5: sequential data processing on SNLI (RNN, LSTM/GRU and SPINN encoders)."""
