"""Technical indicators (vectorised, checked against TA-Lib) and the strategies.indicators step."""
