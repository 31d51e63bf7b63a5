"""The paper broker: bracket orders simulated against the bars that follow their decision."""
