"""The ``.hydro`` accessor: one-line methods that resolve names and call the pure functions.

As in cf_xarray, one class holds what Datasets and DataArrays share (plots, metrics,
signatures) and a Dataset class adds what needs a Dataset of forcings (PET, models,
calibration, embeddings): ``da.hydro.calibrate`` is an AttributeError, not a failure deep inside.
"""

from __future__ import annotations

import xarray as xr


class HydroAccessor:
    """Hydrology methods of Datasets and DataArrays (``da.hydro.*``)."""

    def __init__(self, obj: xr.Dataset | xr.DataArray):
        self._obj = obj

    def _var(self, name_or_array):
        if isinstance(name_or_array, str):
            if not isinstance(self._obj, xr.Dataset):
                raise TypeError(f"a variable name ({name_or_array!r}) needs a Dataset; pass a DataArray instead")
            if name_or_array not in self._obj:
                raise KeyError(f"variable {name_or_array!r} not in the dataset; it has {sorted(self._obj.data_vars)}")
            return self._obj[name_or_array]
        return name_or_array

    @property
    def plot(self):
        """Plots: ``hydrograph``, ``fdc``, ``map``, ``sensitivity``, ``embedding``, ``parity``."""
        from .plot import HydroPlot

        return HydroPlot(self._obj)

    def metrics(self, sim, obs="streamflow", dim="time", **kwargs) -> xr.Dataset:
        """Goodness-of-fit metrics of ``sim`` against ``obs``; see :func:`basinsx.metrics.metrics`."""
        from .metrics import metrics

        return metrics(self._var(sim), self._var(obs), dim=dim, **kwargs)

    def signatures(self, flow="streamflow", **kwargs) -> xr.Dataset:
        """Hydrological signatures (Addor et al. 2018); see :func:`basinsx.signatures.signatures`."""
        from .signatures import signatures

        return signatures(self._obj, flow=flow, **kwargs)


@xr.register_dataarray_accessor("hydro")
class HydroDataArrayAccessor(HydroAccessor):
    """``da.hydro``: plots, metrics and signatures of one variable."""


@xr.register_dataset_accessor("hydro")
class HydroDatasetAccessor(HydroAccessor):
    """``ds.hydro``: what DataArrays have, and what needs a Dataset of forcings (PET, models, calibration)."""

    def pet(self, method: str = "oudin", **kwargs) -> xr.DataArray:
        """Potential evapotranspiration in mm/d; see :func:`basinsx.pet.pet`."""
        from .pet import pet

        return pet(self._obj, method=method, **kwargs)

    def simulate(self, params, model: str | None = None, **kwargs) -> xr.DataArray:
        """Simulated streamflow; see :func:`basinsx.simulation.simulate`."""
        from .simulation import simulate

        return simulate(self._obj, params, model=model, **kwargs)

    def sensitivity(self, params, model: str | None = None, **kwargs) -> xr.DataArray:
        """Jacobian d q_t / d theta; see :func:`basinsx.simulation.sensitivity`."""
        from .simulation import sensitivity

        return sensitivity(self._obj, params, model=model, **kwargs)

    def calibrate(self, model: str = "gr4j", loss: str = "kge", **kwargs) -> xr.Dataset:
        """Calibrate a conceptual model per basin; see :func:`basinsx.calibration.calibrate`."""
        from .calibration import calibrate

        return calibrate(self._obj, model=model, loss=loss, **kwargs)

    def posterior(self, model: str = "gr4j", method: str = "laplace", **kwargs) -> xr.Dataset:
        """Posterior draws of a model's parameters per basin; see :func:`basinsx.calibration.posterior`."""
        from .calibration import posterior

        return posterior(self._obj, model=model, method=method, **kwargs)

    def pareto(self, model: str = "gr4j", losses=("kge", "lognse"), **kwargs) -> xr.Dataset:
        """The front between two calibration losses per basin; see :func:`basinsx.calibration.pareto`."""
        from .calibration import pareto

        return pareto(self._obj, model=model, losses=losses, **kwargs)

    def regionalize(self, learner_or_options, **kwargs) -> xr.DataArray:
        """Parameters of any basin from a regional network; see :func:`basinsx.regional.regionalize`."""
        from .regional import regionalize

        return regionalize(self._obj, learner_or_options, **kwargs)

    def embed(self, **kwargs) -> xr.Dataset:
        """Fit KGSSL embeddings and transform the same data; see :func:`basinsx.embedding.embed`."""
        from .embedding import embed

        return embed(self._obj, **kwargs)
