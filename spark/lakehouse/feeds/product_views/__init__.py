"""The product views feed: its parser (parse) and its silver step (silver); registered in lakehouse.feeds."""
