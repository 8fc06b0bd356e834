throw new RangeError('init boom');
