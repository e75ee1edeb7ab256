"""Houston 2013, full fine-tuning.

    python run.py --config=configs/houston2013_fft.py
"""

from configs import houston2013


def get_config():
    return houston2013.get_config("fft")
